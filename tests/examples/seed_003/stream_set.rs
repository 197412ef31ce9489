// 3-deep pipeline: streams 0, 1, 2 cycle round-robin
let set = device.stream_set(3, "compute")?;

for (i, batch) in batches.iter().enumerate() {
    // Sync the slot before reusing it
    if i >= 3 {
        set.get(i).synchronize()?;  // waits for stream i%3
    }

    let stream = set.get(i);       // i % 3
    unsafe { buf.copy_from_host_async(batch, stream)?; }
    // launch_kernel(&buf, stream)?;
}
set.synchronize_all()?;
