// Round-robin pool of 4 streams
let pool = device.stream_pool(4)?;

// Least-loaded pool (picks stream with fewest pending ops)
let pool = device.stream_pool_with(4, StreamAssignment::LeastPending)?;

// Acquire a stream from the pool (RAII guard)
{
    let guard = pool.acquire()?;
    let stream = guard.stream();

    unsafe { buf.copy_from_host_async(&data, stream)?; }

    // Guard dropped here — decrements pending-op counter
}

// Barrier: wait for all streams in the pool
pool.synchronize_all()?;
