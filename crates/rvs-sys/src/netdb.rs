//! Host and service names through the C library, as ipvsadm looks them up: the
//! reentrant forms of `gethostbyname()`, `gethostbyaddr()`, `getservbyname()` and
//! `getservbyport()`, so the answer comes from the same place ipvsadm's does
//! (`/etc/nsswitch.conf`: `/etc/hosts`, DNS, `/etc/services`, ...) in the same order
//! (the first address of `gethostbyname()`, not `getaddrinfo()`'s sorted list), and a
//! lookup on one thread does not disturb another's.
//!
//! These are the blocking C calls: a name the resolver has to ask the network about
//! waits for the resolver's timeouts. Nothing here caches.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::net::{IpAddr, Ipv4Addr};

// glibc and musl <netdb.h>; the `libc` crate does not bind the `_r` forms.
// SAFETY: the signatures are those of <netdb.h> in glibc and musl (getservbyport_r takes the
// port as a c_int in network byte order); every call below passes buffers it owns.
unsafe extern "C" {
    fn gethostbyname_r(
        name: *const c_char,
        ret: *mut libc::hostent,
        buf: *mut c_char,
        buflen: libc::size_t,
        result: *mut *mut libc::hostent,
        h_errnop: *mut c_int,
    ) -> c_int;
    fn gethostbyaddr_r(
        addr: *const c_void,
        len: libc::socklen_t,
        af: c_int,
        ret: *mut libc::hostent,
        buf: *mut c_char,
        buflen: libc::size_t,
        result: *mut *mut libc::hostent,
        h_errnop: *mut c_int,
    ) -> c_int;
    fn getservbyname_r(
        name: *const c_char,
        proto: *const c_char,
        ret: *mut libc::servent,
        buf: *mut c_char,
        buflen: libc::size_t,
        result: *mut *mut libc::servent,
    ) -> c_int;
    fn getservbyport_r(
        port: c_int,
        proto: *const c_char,
        ret: *mut libc::servent,
        buf: *mut c_char,
        buflen: libc::size_t,
        result: *mut *mut libc::servent,
    ) -> c_int;
}

/// The largest scratch buffer a lookup may ask for (it starts at 1 KiB and doubles on
/// `ERANGE`).
const MAX_BUF: usize = 1 << 20;

/// Run a `*_r` lookup with a growing scratch buffer: `call(buf, len)` returns the C
/// function's status and whether it found an entry; `Some(buf)` once it did.
fn with_buffer<T>(mut call: impl FnMut(&mut [c_char]) -> (c_int, Option<T>)) -> Option<T> {
    let mut len = 1024;
    loop {
        let mut buf: Vec<c_char> = vec![0; len];
        match call(&mut buf) {
            (libc::ERANGE, _) if len < MAX_BUF => len *= 2,
            (_, found) => return found,
        }
    }
}

/// `gethostbyname(name)` as ipvsadm's `host_to_addr()` takes it: the first address,
/// when the answer is IPv4 (`h_addrtype == AF_INET`, 4-byte addresses).
pub fn host_v4(name: &str) -> Option<Ipv4Addr> {
    let name = CString::new(name).ok()?;
    with_buffer(|buf| {
        // SAFETY: hostent is plain old data (pointers and integers); all-zero is a valid
        // value, and the C function fills it in before we read it.
        let mut ent: libc::hostent = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::hostent = std::ptr::null_mut();
        let mut herr: c_int = 0;
        // SAFETY: `name` is NUL-terminated; `ent`, `buf` (of `buf.len()` bytes), `result`
        // and `herr` are valid for writes for the duration of the call.
        let rc = unsafe {
            gethostbyname_r(
                name.as_ptr(),
                &mut ent,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
                &mut herr,
            )
        };
        if rc != 0 || result.is_null() {
            return (rc, None);
        }
        if ent.h_addrtype != libc::AF_INET || ent.h_length != 4 || ent.h_addr_list.is_null() {
            return (0, None);
        }
        // SAFETY: on success h_addr_list is a NULL-terminated array in `buf`; its first
        // element, when not NULL, points at h_length (4) bytes.
        let first = unsafe { *ent.h_addr_list };
        if first.is_null() {
            return (0, None);
        }
        // SAFETY: `first` points at 4 readable bytes inside `buf` (see above).
        let o = unsafe { std::slice::from_raw_parts(first.cast::<u8>(), 4) };
        (0, Some(Ipv4Addr::new(o[0], o[1], o[2], o[3])))
    })
}

/// `gethostbyaddr(addr)` as ipvsadm 1.31's `addr_to_host()` asks it (the address's
/// own length and family): the official name, `h_name`.
pub fn host_name(addr: IpAddr) -> Option<String> {
    let (bytes, af): (Vec<u8>, c_int) = match addr {
        IpAddr::V4(a) => (a.octets().to_vec(), libc::AF_INET),
        IpAddr::V6(a) => (a.octets().to_vec(), libc::AF_INET6),
    };
    with_buffer(|buf| {
        // SAFETY: hostent is plain old data; all-zero is a valid value.
        let mut ent: libc::hostent = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::hostent = std::ptr::null_mut();
        let mut herr: c_int = 0;
        // SAFETY: `bytes` holds the `bytes.len()` address bytes the call reads; `ent`,
        // `buf`, `result` and `herr` are valid for writes during the call.
        let rc = unsafe {
            gethostbyaddr_r(
                bytes.as_ptr().cast(),
                bytes.len() as libc::socklen_t,
                af,
                &mut ent,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
                &mut herr,
            )
        };
        if rc != 0 || result.is_null() || ent.h_name.is_null() {
            return (rc, None);
        }
        // SAFETY: on success h_name is a NUL-terminated string inside `buf`.
        let name = unsafe { CStr::from_ptr(ent.h_name) };
        (0, Some(name.to_string_lossy().into_owned()))
    })
}

/// `getservbyname(name, proto)`: the port (host order).
pub fn service_port(name: &str, proto: &str) -> Option<u16> {
    let (name, proto) = (CString::new(name).ok()?, CString::new(proto).ok()?);
    with_buffer(|buf| {
        // SAFETY: servent is plain old data; all-zero is a valid value.
        let mut ent: libc::servent = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::servent = std::ptr::null_mut();
        // SAFETY: `name` and `proto` are NUL-terminated; `ent`, `buf` and `result` are
        // valid for writes during the call.
        let rc = unsafe {
            getservbyname_r(
                name.as_ptr(),
                proto.as_ptr(),
                &mut ent,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc != 0 || result.is_null() {
            return (rc, None);
        }
        // s_port is in network byte order in an int (ipvsadm: `ntohs(s_port)`).
        (0, Some(u16::from_be(ent.s_port as u16)))
    })
}

/// `getservbyport(port, proto)`: the service's official name, `s_name`.
pub fn service_name(port: u16, proto: &str) -> Option<String> {
    let proto = CString::new(proto).ok()?;
    with_buffer(|buf| {
        // SAFETY: servent is plain old data; all-zero is a valid value.
        let mut ent: libc::servent = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::servent = std::ptr::null_mut();
        // SAFETY: `proto` is NUL-terminated; `ent`, `buf` and `result` are valid for
        // writes during the call.
        let rc = unsafe {
            getservbyport_r(
                c_int::from(port.to_be()),
                proto.as_ptr(),
                &mut ent,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc != 0 || result.is_null() || ent.s_name.is_null() {
            return (rc, None);
        }
        // SAFETY: on success s_name is a NUL-terminated string inside `buf`.
        let name = unsafe { CStr::from_ptr(ent.s_name) };
        (0, Some(name.to_string_lossy().into_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // These read the system's files: `localhost` is in every /etc/hosts, and `http`
    // (80/tcp) in netbase's /etc/services (scripts/test installs netbase).

    #[test]
    fn localhost_and_its_name() {
        assert_eq!(host_v4("localhost"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            host_name(IpAddr::V4(Ipv4Addr::LOCALHOST)).as_deref(),
            Some("localhost")
        );
        assert_eq!(host_v4("bad\0name"), None);
        // TEST-NET-1 has no name in any hosts file, and reverse DNS answers nothing here.
        assert_eq!(host_name("192.0.2.213".parse().unwrap()), None);
    }

    #[test]
    fn services_by_protocol() {
        assert_eq!(service_port("http", "tcp"), Some(80));
        assert_eq!(service_port("www", "tcp"), Some(80));
        assert_eq!(service_port("no-such-service-name", "tcp"), None);
        assert_eq!(service_name(80, "tcp").as_deref(), Some("http"));
        assert_eq!(service_name(22, "tcp").as_deref(), Some("ssh"));
        assert_eq!(service_port("http", "no-such-proto"), None);
    }
}
