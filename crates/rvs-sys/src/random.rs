//! Random bytes from the kernel (`getrandom(2)`), for the secrets that must not be
//! guessable: the connection table's hash seed (hash-flooding defence).
//!
//! There is no fallback: if the kernel cannot give randomness, the caller refuses to start
//! rather than hashing with a predictable seed.

use std::io;

/// Fill `buf` with random bytes from the kernel's pool (`getrandom(buf, 0)`: blocks only
/// until the pool is initialised at boot). Retries on `EINTR` and short reads.
pub fn fill(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes for the call.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        done += n as usize;
    }
    Ok(())
}

/// A random `u64` from [`fill`].
pub fn u64() -> io::Result<u64> {
    let mut b = [0u8; 8];
    fill(&mut b)?;
    Ok(u64::from_ne_bytes(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_draws_differ_and_fill_covers_the_buffer() {
        let a = super::u64().unwrap();
        let b = super::u64().unwrap();
        assert_ne!(a, b);
        let mut big = [0u8; 4096];
        super::fill(&mut big).unwrap();
        // 4096 random bytes with no zero byte in the last 256 is all but impossible.
        assert!(big[3840..].iter().any(|&x| x != 0));
        assert!(big[..256].iter().any(|&x| x != 0));
    }
}
