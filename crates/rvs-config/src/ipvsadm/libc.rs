//! The C library behaviour ipvsadm's parsing and printing inherit, reproduced exactly:
//! `strtol`-based number parsing (`string_to_number()`), `inet_aton()` (which takes
//! `10`, `10.1`, octal and hex parts), `atoi()`, glibc's `inet_ntop()` for IPv6, and
//! glibc's merge sort (`qsort()`), whose result matters because libipvs' comparators
//! subtract unsigned addresses into an `int`.
//!
//! Nothing here resolves names or touches the system (names: [`super::names`]).

use std::net::{Ipv4Addr, Ipv6Addr};

/// `strtol(s, &end, 10)`: leading C whitespace, an optional sign, decimal digits.
/// Returns the value (saturated on overflow), the end index and whether it overflowed
/// (`ERANGE`). No digits: value 0 and end 0, as strtol leaves `end == s`.
pub(crate) fn strtol(s: &str) -> (i64, usize, bool) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: i128 = 0;
    let mut over = false;
    while i < b.len() && b[i].is_ascii_digit() {
        v = v * 10 + i128::from(b[i] - b'0');
        if v > i128::from(i64::MAX) + 1 {
            over = true;
            v = i128::from(i64::MAX) + 1;
        }
        i += 1;
    }
    if i == start {
        return (0, 0, false);
    }
    let v = if neg { -v } else { v };
    if v > i128::from(i64::MAX) {
        return (i64::MAX, i, true);
    }
    if v < i128::from(i64::MIN) {
        return (i64::MIN, i, true);
    }
    (v as i64, i, over)
}

/// ipvsadm's `string_to_number(s, min, max)`: the whole string must be a number in range.
pub(crate) fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let (v, end, erange) = strtol(s);
    (end == s.len() && end != 0 && !erange && min <= v && v <= max).then_some(v)
}

/// `atoi()`: strtol's prefix, 0 when there is none.
pub(crate) fn atoi(s: &str) -> i64 {
    let (v, _, _) = strtol(s);
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX))
}

/// glibc `inet_aton()`: one to four parts, each decimal, octal (`0` prefix) or hex (`0x`);
/// the last part fills the remaining bytes; trailing whitespace ends the address.
pub(crate) fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut parts: Vec<u64> = Vec::new();
    let val;
    loop {
        if i >= b.len() || !b[i].is_ascii_digit() {
            return None;
        }
        let mut base = 10;
        if b[i] == b'0' {
            i += 1;
            if i < b.len() && (b[i] == b'x' || b[i] == b'X') {
                base = 16;
                i += 1;
            } else {
                base = 8;
            }
        }
        let mut v: u64 = 0;
        while i < b.len() {
            let c = b[i];
            let d = if c.is_ascii_digit() {
                if base == 8 && (c == b'8' || c == b'9') {
                    return None;
                }
                u64::from(c - b'0')
            } else if base == 16 && c.is_ascii_hexdigit() {
                u64::from(c.to_ascii_lowercase() - b'a' + 10)
            } else {
                break;
            };
            v = v * base + d;
            if v > u64::from(u32::MAX) {
                return None;
            }
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            if parts.len() > 2 || v > 0xff {
                return None;
            }
            parts.push(v);
            i += 1;
        } else {
            val = v;
            break;
        }
    }
    if i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        return None;
    }
    let v = match parts.len() {
        0 => val,
        1 if val <= 0xff_ffff => val | parts[0] << 24,
        2 if val <= 0xffff => val | parts[0] << 24 | parts[1] << 16,
        3 if val <= 0xff => val | parts[0] << 24 | parts[1] << 16 | parts[2] << 8,
        _ => return None,
    };
    Some(Ipv4Addr::from(v as u32))
}

/// glibc `inet_ntop(AF_INET6)`: the longest run (first on ties, at least two groups) of
/// zero groups becomes `::`; `::a.b.c.d` and `::ffff:a.b.c.d` print their IPv4 tail
/// dotted. (Rust's `Display` prints `::102:304` where glibc prints `::1.2.3.4`.)
pub(crate) fn inet_ntop6(a: &Ipv6Addr) -> String {
    let w = a.segments();
    let (mut best, mut cur): ((isize, usize), (isize, usize)) = ((-1, 0), (-1, 0));
    for (i, &g) in w.iter().enumerate() {
        if g == 0 {
            if cur.0 == -1 {
                cur = (i as isize, 1);
            } else {
                cur.1 += 1;
            }
        } else if cur.0 != -1 {
            if best.0 == -1 || cur.1 > best.1 {
                best = cur;
            }
            cur = (-1, 0);
        }
    }
    if cur.0 != -1 && (best.0 == -1 || cur.1 > best.1) {
        best = cur;
    }
    if best.0 != -1 && best.1 < 2 {
        best = (-1, 0);
    }
    let mut out = String::new();
    let mut i = 0usize;
    while i < 8 {
        if best.0 != -1 && i as isize >= best.0 && (i as isize) < best.0 + best.1 as isize {
            if i as isize == best.0 {
                out.push(':');
            }
            i += 1;
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6 && best.0 == 0 && (best.1 == 6 || (best.1 == 5 && w[5] == 0xffff)) {
            let o = a.octets();
            out.push_str(&format!("{}.{}.{}.{}", o[12], o[13], o[14], o[15]));
            break;
        }
        out.push_str(&format!("{:x}", w[i]));
        i += 1;
    }
    if best.0 != -1 && best.0 + best.1 as isize == 8 {
        out.push(':');
    }
    out
}

/// glibc's `qsort()` (its merge sort, `msort_with_tmp`): halves of `n / 2` and the rest,
/// merged taking from the left while `cmp(left, right) <= 0`. With libipvs' wrapping
/// comparators the order is not a total order, so the algorithm decides the output.
pub(crate) fn glibc_qsort<T: Clone>(v: &mut [T], cmp: &dyn Fn(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    glibc_qsort(&mut v[..n1], cmp);
    glibc_qsort(&mut v[n1..], cmp);
    let mut out = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            out.push(v[i].clone());
            i += 1;
        } else {
            out.push(v[j].clone());
            j += 1;
        }
    }
    out.extend_from_slice(&v[i..n1]);
    out.extend_from_slice(&v[j..n]);
    v.clone_from_slice(&out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtol_and_string_to_number() {
        assert_eq!(string_to_number("42", 0, 65535), Some(42));
        assert_eq!(string_to_number(" +7", 0, 65535), Some(7));
        assert_eq!(string_to_number("7 ", 0, 65535), None);
        assert_eq!(string_to_number("", 0, 65535), None);
        assert_eq!(string_to_number("-1", 0, 65535), None);
        assert_eq!(string_to_number("65536", 0, 65535), None);
        assert_eq!(string_to_number("99999999999999999999", 0, i64::MAX), None);
        assert_eq!(atoi("64abc"), 64);
        assert_eq!(atoi("x"), 0);
    }

    #[test]
    fn inet_aton_forms() {
        assert_eq!(
            inet_aton("255.255.255.0"),
            Some(Ipv4Addr::new(255, 255, 255, 0))
        );
        assert_eq!(inet_aton("24"), Some(Ipv4Addr::new(0, 0, 0, 24)));
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("0x0a.010.0.1"), Some(Ipv4Addr::new(10, 8, 0, 1)));
        assert_eq!(inet_aton("1.2.3.4 junk"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton("1.2.3.256"), None);
        assert_eq!(inet_aton("1..3"), None);
        assert_eq!(inet_aton("09"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton(""), None);
    }

    #[test]
    fn ntop6_matches_glibc() {
        let p = |s: &str| inet_ntop6(&s.parse().unwrap());
        assert_eq!(p("2001:db8::1"), "2001:db8::1");
        assert_eq!(p("::"), "::");
        assert_eq!(p("::1"), "::1");
        assert_eq!(p("::1.2.3.4"), "::1.2.3.4");
        assert_eq!(p("::ffff:10.0.0.1"), "::ffff:10.0.0.1");
        assert_eq!(p("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
        assert_eq!(p("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");
        assert_eq!(p("fe80::"), "fe80::");
    }

    #[test]
    fn qsort_is_glibc_merge_order() {
        let mut v = vec![5, 1, 4, 2, 3];
        glibc_qsort(&mut v, &|a: &i32, b: &i32| a - b);
        assert_eq!(v, [1, 2, 3, 4, 5]);
    }
}
