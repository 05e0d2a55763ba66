//! Zero-copy packet views, in-place rewrite, checksums and tunnel encapsulation.
//!
//! The views follow smoltcp's `wire`: a `Packet<T: AsRef<[u8]>>` over borrowed bytes whose
//! fields are byte ranges in a `mod field`; `new_checked` validates lengths once, after which
//! no accessor can panic; setters need `T: AsMut<[u8]>` and rewrite in place. [`parse`] is
//! the one-pass flow parse the engine runs on every frame. Nothing here allocates, reads a
//! clock or does I/O; nothing here decides what to do with a packet (that is the director's
//! job), and IP fragments are described, never reassembled.

pub mod checksum;
