//! The `virtio_net_hdr` that prefixes every frame of a packet socket with
//! `PACKET_VNET_HDR`: GSO type and segment size, and where a partial checksum must be
//! finished. The kernel fills it on receive and reads it on transmit, so a GSO
//! super-frame or a checksum-partial packet can be forwarded unchanged and segmented or
//! completed by the kernel on the way out.
//!
//! Only the 10-byte header is supported (not the 12-byte `virtio_net_hdr_mrg_rxbuf` of
//! `PACKET_VNET_HDR_SZ`). Fields are in host byte order: packet sockets use the legacy
//! virtio convention, which is the host's endianness.

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the L4 checksum is partial; finish it from
/// `csum_start` over the rest of the packet, storing at `csum_start + csum_offset`.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was already verified.
pub const F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`: not a GSO frame.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`: IPv4 TCP super-frame (TSO/GRO).
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP`: IPv4 UDP fragmentation offload (UFO).
pub const GSO_UDP: u8 = 3;
/// `VIRTIO_NET_HDR_GSO_TCPV6`: IPv6 TCP super-frame.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_UDP_L4`: UDP segmentation offload (USO).
pub const GSO_UDP_L4: u8 = 5;
/// `VIRTIO_NET_HDR_GSO_ECN`: flag on `gso_type`, the TCP flow uses ECN.
pub const GSO_ECN: u8 = 0x80;

/// `struct virtio_net_hdr` (include/uapi/linux/virtio_net.h), 10 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VirtioNetHdr {
    /// `F_NEEDS_CSUM` / `F_DATA_VALID`.
    pub flags: u8,
    /// One of the `GSO_*` values, possibly with `GSO_ECN`.
    pub gso_type: u8,
    /// Length of the headers (Ethernet + IP + L4) of a GSO frame; a hint.
    pub hdr_len: u16,
    /// Payload bytes per segment of a GSO frame (the MSS for TCP).
    pub gso_size: u16,
    /// Offset from the start of the Ethernet frame where checksumming starts.
    pub csum_start: u16,
    /// Offset from `csum_start` where the checksum is stored.
    pub csum_offset: u16,
}

/// Size of [`VirtioNetHdr`] in the frame.
pub const VNET_HDR_LEN: usize = size_of::<VirtioNetHdr>();

impl VirtioNetHdr {
    /// True when the L4 checksum is partial (`F_NEEDS_CSUM`).
    pub fn needs_csum(&self) -> bool {
        self.flags & F_NEEDS_CSUM != 0
    }

    /// True when the kernel already verified the checksum (`F_DATA_VALID`).
    pub fn data_valid(&self) -> bool {
        self.flags & F_DATA_VALID != 0
    }

    /// True for a GSO super-frame (any `gso_type` other than `GSO_NONE`).
    pub fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }

    /// The header as the bytes the kernel reads or writes.
    pub fn to_bytes(self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    /// Parses the header from the bytes the kernel wrote.
    pub fn from_bytes(b: &[u8; VNET_HDR_LEN]) -> Self {
        let u = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn layout_matches_the_kernel() {
        // include/uapi/linux/virtio_net.h: __u8 flags; __u8 gso_type; __virtio16 hdr_len,
        // gso_size, csum_start, csum_offset.
        assert_eq!(size_of::<VirtioNetHdr>(), 10);
        assert_eq!(align_of::<VirtioNetHdr>(), 2);
        assert_eq!(offset_of!(VirtioNetHdr, flags), 0);
        assert_eq!(offset_of!(VirtioNetHdr, gso_type), 1);
        assert_eq!(offset_of!(VirtioNetHdr, hdr_len), 2);
        assert_eq!(offset_of!(VirtioNetHdr, gso_size), 4);
        assert_eq!(offset_of!(VirtioNetHdr, csum_start), 6);
        assert_eq!(offset_of!(VirtioNetHdr, csum_offset), 8);
    }

    #[test]
    fn bytes_round_trip_in_struct_order() {
        let h = VirtioNetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4 | GSO_ECN,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let b = h.to_bytes();
        assert_eq!(VirtioNetHdr::from_bytes(&b), h);
        // SAFETY (test): VirtioNetHdr is repr(C) plain data of exactly 10 bytes without padding.
        let raw: [u8; 10] = unsafe { std::mem::transmute(h) };
        assert_eq!(raw, b);
        assert!(h.needs_csum() && h.is_gso() && !h.data_valid());
        assert!(!VirtioNetHdr::default().is_gso());
    }
}
