//! Link-layer rewrites: the MAC addresses of frames the director forwards or answers.
//! (IP-level rewrites are `wire::nat`'s.)

/// Set the Ethernet destination and source addresses.
pub(crate) fn set_macs(buf: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    if let Some(s) = buf.get_mut(0..12) {
        s[..6].copy_from_slice(&dst);
        s[6..].copy_from_slice(&src);
    }
}

/// Swap the Ethernet addresses (for replies sent back where the frame came from).
pub(crate) fn swap_macs(buf: &mut [u8]) {
    if let Some(s) = buf.get_mut(0..12) {
        let (a, b) = s.split_at_mut(6);
        a.swap_with_slice(b);
    }
}
