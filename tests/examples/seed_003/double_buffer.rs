let set = device.stream_set(2, "pipe")?;

for (i, batch) in batches.enumerate() {
    let slot   = i % 2;
    let stream = set.get(i);

    // Sync slot before reusing (waits for previous use of this slot)
    if i >= 2 { stream.synchronize()?; }

    unsafe {
        dev_bufs[slot].copy_from_host_async(batch, stream)?;
        dev_bufs[slot].copy_to_host_async(&mut results[slot], stream)?;
    }
}
set.synchronize_all()?;
