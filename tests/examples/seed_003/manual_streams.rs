let s0 = device.create_stream("h2d-0")?;
let s1 = device.create_stream("compute-0")?;
let s2 = device.create_stream("d2h-0")?;

unsafe {
    buf_a.copy_from_host_async(&input_a, &s0)?;
    buf_b.copy_from_host_async(&input_b, &s0)?;  // s0: serial H2D
    // kernel on s1 (overlaps with H2D on s0)
    buf_out.copy_to_host_async(&mut result, &s2)?;
}

s0.synchronize()?;
s1.synchronize()?;
s2.synchronize()?;
