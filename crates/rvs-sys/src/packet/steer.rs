//! Steering for several forwarding workers (`rvs daemon --workers N`): a
//! `PACKET_FANOUT_CBPF` program that sends both directions of a NAT or DR connection to
//! the same member of the group, and the socket filter of the workers' ARP sockets.
//!
//! For NAT the client's address and port are the one endpoint both directions share: a
//! request goes client → VIP (the client is the source), its reply real server → client
//! (the client is the destination). So the program hashes the source of a frame whose
//! destination is a VIP and the destination of every other frame; a DR or TUN director
//! sees requests only (destination a VIP: source hashed). The VIPs are compiled into the
//! program ([`steering_program`]), which a reload replaces ([`set_fanout_program`]).
//!
//! What the program cannot see or place goes to member 0 (the first worker): frames that
//! are not IPv4 (ARP, IPv6 and its neighbour discovery), IPv4 protocols other than TCP and
//! UDP (ICMP), and non-first fragments (no ports). The kernel takes the program's result
//! modulo the group's size (`fanout_demux_bpf()`, net/packet/af_packet.c).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use libc::{
    BPF_A, BPF_ABS, BPF_ALU, BPF_B, BPF_H, BPF_IND, BPF_JA, BPF_JEQ, BPF_JMP, BPF_JSET, BPF_K,
    BPF_LD, BPF_LDX, BPF_MEM, BPF_MSH, BPF_MUL, BPF_RET, BPF_RSH, BPF_ST, BPF_W, BPF_X, BPF_XOR,
    sock_filter,
};

/// The most IPv4 VIPs a steering program compares (classic BPF jumps reach 255
/// instructions ahead).
pub const MAX_STEERED_VIPS: usize = 200;

/// The multiplier of the program's hash (2^32 / φ, Fibonacci hashing).
const GOLDEN: u32 = 0x9e37_79b1;

fn insn(code: u32, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The value the steering program returns for an IPv4 TCP/UDP frame whose client is
/// `addr`:`port` (the kernel picks member `value % members`); the same arithmetic as the
/// program, for tests and for documentation.
pub fn client_hash(addr: std::net::Ipv4Addr, port: u16) -> u32 {
    (u32::from(addr) ^ u32::from(port)).wrapping_mul(GOLDEN) >> 16
}

/// The `PACKET_FANOUT_CBPF` program of a group of workers serving the IPv4 VIPs `vips`
/// (at most [`MAX_STEERED_VIPS`]; duplicates are fine). It sees the frame from its
/// network header (`skb->protocol` for the ethertype), as [`super::SYN_SPLIT`] does.
pub fn steering_program(vips: &[std::net::Ipv4Addr]) -> io::Result<Vec<sock_filter>> {
    if vips.len() > MAX_STEERED_VIPS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} IPv4 VIPs; the workers' steering program compares at most {MAX_STEERED_VIPS}",
                vips.len()
            ),
        ));
    }
    const LDW: u32 = BPF_LD | BPF_W | BPF_ABS;
    const LDH: u32 = BPF_LD | BPF_H | BPF_ABS;
    const LDB: u32 = BPF_LD | BPF_B | BPF_ABS;
    const LDHI: u32 = BPF_LD | BPF_H | BPF_IND;
    const JEQ: u32 = BPF_JMP | BPF_JEQ | BPF_K;
    let protocol = (libc::SKF_AD_OFF + libc::SKF_AD_PROTOCOL) as u32;
    let v = vips.len();
    // Layout (indices): 0..=8 the checks, 9..9+v the VIP comparisons, then DST (4), SRC
    // (3), MIX (5: ends with ret A), RET0.
    let dst = 9 + v;
    let src = dst + 4;
    let mix = src + 3;
    let ret0 = mix + 5;
    // A jump from instruction `at` to `to`: the offset counts from the next instruction.
    let off = |at: usize, to: usize| -> u8 { (to - at - 1) as u8 };
    let mut p = vec![
        /* 0 */ insn(LDH, 0, 0, protocol),
        /* 1 */ insn(JEQ, 0, off(1, ret0), 0x0800), // IPv4, else member 0
        /* 2 */ insn(LDB, 0, 0, 9),
        /* 3 */ insn(JEQ, off(3, 5), 0, 6), // TCP
        /* 4 */ insn(JEQ, 0, off(4, ret0), 17), // UDP, else member 0
        /* 5 */ insn(LDH, 0, 0, 6),
        /* 6 */
        insn(BPF_JMP | BPF_JSET | BPF_K, off(6, ret0), 0, 0x1fff), // non-first fragment
        /* 7 */ insn(BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0), // X = header length
        /* 8 */ insn(LDW, 0, 0, 16), // destination address
    ];
    for (i, a) in vips.iter().enumerate() {
        let at = 9 + i;
        p.push(insn(JEQ, off(at, src), 0, u32::from(*a)));
    }
    // The destination is not a VIP: it is the client (a reply), hash it.
    p.extend([
        insn(LDHI, 0, 0, 2), // destination port
        insn(BPF_ST, 0, 0, 0),
        insn(LDW, 0, 0, 16),
        insn(BPF_JMP | BPF_JA, 0, 0, (mix - (dst + 3) - 1) as u32),
    ]);
    // A request to a VIP: the source is the client.
    p.extend([
        insn(LDHI, 0, 0, 0), // source port
        insn(BPF_ST, 0, 0, 0),
        insn(LDW, 0, 0, 12),
    ]);
    p.extend([
        insn(BPF_LDX | BPF_W | BPF_MEM, 0, 0, 0), // X = the port
        insn(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0),
        insn(BPF_ALU | BPF_MUL | BPF_K, 0, 0, GOLDEN),
        insn(BPF_ALU | BPF_RSH | BPF_K, 0, 0, 16),
        insn(BPF_RET | BPF_A, 0, 0, 0),
        insn(BPF_RET | BPF_K, 0, 0, 0),
    ]);
    debug_assert_eq!(p.len(), ret0 + 1);
    Ok(p)
}

/// The socket filter of a worker's ARP socket: ARP frames only (`skb->protocol`).
pub static ARP_ONLY: [sock_filter; 4] = [
    sock_filter {
        code: (BPF_LD | BPF_H | BPF_ABS) as u16,
        jt: 0,
        jf: 0,
        k: (libc::SKF_AD_OFF + libc::SKF_AD_PROTOCOL) as u32,
    },
    sock_filter {
        code: (BPF_JMP | BPF_JEQ | BPF_K) as u16,
        jt: 0,
        jf: 1,
        k: 0x0806,
    },
    sock_filter {
        code: (BPF_RET | BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: 0x0004_0000,
    },
    sock_filter {
        code: (BPF_RET | BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    },
];

fn fprog(prog: &[sock_filter]) -> io::Result<libc::sock_fprog> {
    let len = u16::try_from(prog.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a classic BPF program of {} instructions", prog.len()),
        )
    })?;
    Ok(libc::sock_fprog {
        len,
        filter: prog.as_ptr().cast_mut(),
    })
}

/// Replace the program of the fanout group `fd` (a member's socket) is in
/// (`PACKET_FANOUT_DATA`; the kernel swaps it under RCU, frames in flight use either).
pub fn set_fanout_program(fd: BorrowedFd<'_>, prog: &[sock_filter]) -> io::Result<()> {
    let f = fprog(prog)?;
    // The kernel copies the program during the call; `prog` outlives it.
    crate::sys::setsockopt(
        fd.as_raw_fd(),
        libc::SOL_PACKET,
        libc::PACKET_FANOUT_DATA,
        &f,
        "setsockopt(PACKET_FANOUT_DATA)",
        "steering",
    )
}

/// Attach `prog` as the socket filter of `fd` (`SO_ATTACH_FILTER`).
pub fn attach_filter(fd: BorrowedFd<'_>, prog: &[sock_filter]) -> io::Result<()> {
    let f = fprog(prog)?;
    // The kernel copies the program during the call; `prog` outlives it.
    crate::sys::setsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_ATTACH_FILTER,
        &f,
        "setsockopt(SO_ATTACH_FILTER)",
        "filter",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// A classic BPF interpreter for the instructions the programs here use, over an IPv4
    /// packet from its network header (`proto` for `skb->protocol`).
    fn run(prog: &[sock_filter], proto: u16, pkt: &[u8]) -> u32 {
        let (mut a, mut x, mut m) = (0u32, 0u32, [0u32; 16]);
        let mut pc = 0;
        let ld = |off: usize, n: usize| -> u32 {
            pkt[off..off + n]
                .iter()
                .fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
        };
        loop {
            let i = prog[pc];
            let code = u32::from(i.code);
            pc += 1;
            match code {
                c if c == BPF_LD | BPF_H | BPF_ABS
                    && i.k == (libc::SKF_AD_OFF + libc::SKF_AD_PROTOCOL) as u32 =>
                {
                    a = u32::from(proto)
                }
                c if c == BPF_LD | BPF_W | BPF_ABS => a = ld(i.k as usize, 4),
                c if c == BPF_LD | BPF_H | BPF_ABS => a = ld(i.k as usize, 2),
                c if c == BPF_LD | BPF_B | BPF_ABS => a = ld(i.k as usize, 1),
                c if c == BPF_LD | BPF_H | BPF_IND => a = ld(x as usize + i.k as usize, 2),
                c if c == BPF_LDX | BPF_B | BPF_MSH => x = 4 * (ld(i.k as usize, 1) & 0xf),
                c if c == BPF_LDX | BPF_W | BPF_MEM => x = m[i.k as usize],
                c if c == BPF_ST => m[i.k as usize] = a,
                c if c == BPF_ALU | BPF_XOR | BPF_X => a ^= x,
                c if c == BPF_ALU | BPF_MUL | BPF_K => a = a.wrapping_mul(i.k),
                c if c == BPF_ALU | BPF_RSH | BPF_K => a >>= i.k,
                c if c == BPF_JMP | BPF_JA => pc += i.k as usize,
                c if c == BPF_JMP | BPF_JEQ | BPF_K => {
                    pc += usize::from(if a == i.k { i.jt } else { i.jf })
                }
                c if c == BPF_JMP | BPF_JSET | BPF_K => {
                    pc += usize::from(if a & i.k != 0 { i.jt } else { i.jf })
                }
                c if c == BPF_RET | BPF_A => return a,
                c if c == BPF_RET | BPF_K => return i.k,
                c => panic!("instruction {c:#x} not interpreted"),
            }
        }
    }

    /// An IPv4 packet (header of `ihl` words) of `proto` from `s`:`sp` to `d`:`dp`.
    fn v4(s: Ipv4Addr, sp: u16, d: Ipv4Addr, dp: u16, proto: u8, ihl: u8, frag: u16) -> Vec<u8> {
        let h = usize::from(ihl) * 4;
        let mut p = vec![0u8; h + 20];
        p[0] = 0x40 | ihl;
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[9] = proto;
        p[12..16].copy_from_slice(&s.octets());
        p[16..20].copy_from_slice(&d.octets());
        p[h..h + 2].copy_from_slice(&sp.to_be_bytes());
        p[h + 2..h + 4].copy_from_slice(&dp.to_be_bytes());
        p
    }

    #[test]
    fn both_directions_of_a_nat_flow_land_on_one_worker() {
        let vip = Ipv4Addr::new(192, 0, 2, 10);
        let other_vip = Ipv4Addr::new(192, 0, 2, 11);
        let rs = Ipv4Addr::new(10, 0, 1, 2);
        let prog = steering_program(&[other_vip, vip]).unwrap();
        let mut seen = [[0usize; 2]; 2];
        for n in [2u32, 3, 16] {
            for cport in (1024..=65535).step_by(997) {
                for (client, proto) in [
                    (Ipv4Addr::new(198, 51, 100, 7), 6u8),
                    (Ipv4Addr::new(203, 0, 113, 200), 17),
                ] {
                    let req = v4(client, cport, vip, 80, proto, 5, 0x4000);
                    // The reply, with IP options this time (the header length is read).
                    let rep = v4(rs, 8080, client, cport, proto, 7, 0);
                    let (a, b) = (run(&prog, 0x0800, &req), run(&prog, 0x0800, &rep));
                    assert_eq!(a % n, b % n, "{client}:{cport} proto {proto} over {n}");
                    assert_eq!(a, client_hash(client, cport));
                    if n == 2 {
                        seen[usize::from(proto == 17)][(a % 2) as usize] += 1;
                    }
                }
            }
        }
        // Many client ports spread over both of two workers.
        for s in seen {
            assert!(s[0] > 5 && s[1] > 5, "{seen:?}");
        }
    }

    #[test]
    fn what_cannot_be_placed_goes_to_the_first_worker() {
        let vip = Ipv4Addr::new(192, 0, 2, 10);
        let client = Ipv4Addr::new(198, 51, 100, 7);
        let prog = steering_program(&[vip]).unwrap();
        let req = v4(client, 40000, vip, 80, 6, 5, 0);
        // ARP and IPv6 by ethertype, ICMP by protocol, a non-first fragment.
        assert_eq!(run(&prog, 0x0806, &req), 0);
        assert_eq!(run(&prog, 0x86dd, &req), 0);
        assert_eq!(run(&prog, 0x0800, &v4(client, 0, vip, 0, 1, 5, 0)), 0);
        assert_eq!(run(&prog, 0x0800, &v4(client, 1, vip, 2, 6, 5, 0x2001)), 0);
        // A first fragment (more-fragments set, offset 0) has its ports: hashed.
        assert_eq!(
            run(&prog, 0x0800, &v4(client, 40000, vip, 80, 6, 5, 0x2000)),
            client_hash(client, 40000)
        );
    }

    #[test]
    fn the_vip_list_is_bounded() {
        let many: Vec<Ipv4Addr> = (0..=MAX_STEERED_VIPS as u32).map(Ipv4Addr::from).collect();
        assert!(steering_program(&many[..MAX_STEERED_VIPS]).is_ok());
        let e = steering_program(&many).unwrap_err();
        assert!(e.to_string().contains("at most 200"), "{e}");
        // The last VIP's jump still lands on the source branch.
        let prog = steering_program(&many[..MAX_STEERED_VIPS]).unwrap();
        let last = many[MAX_STEERED_VIPS - 1];
        let client = Ipv4Addr::new(198, 51, 100, 7);
        assert_eq!(
            run(&prog, 0x0800, &v4(client, 5555, last, 80, 6, 5, 0)),
            client_hash(client, 5555)
        );
    }

    #[test]
    fn the_arp_filter_takes_arp_only() {
        assert_eq!(run(&ARP_ONLY, 0x0806, &[0; 28]), 0x4_0000);
        assert_eq!(run(&ARP_ONLY, 0x0800, &[0; 28]), 0);
    }
}
