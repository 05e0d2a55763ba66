/* SPDX-License-Identifier: GPL-2.0-or-later */
/* rvs XDP fast path: the structures shared with userspace (crates/rvs-xdp/src/maps.rs
 * mirrors them as repr(C) structs; its layout tests pin sizes and offsets). */
#ifndef RVS_FASTPATH_H
#define RVS_FASTPATH_H

#include <linux/types.h>

/* An IPv4 TCP segment or UDP datagram as it arrives (network byte order throughout). */
struct flow_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	/* IPPROTO_TCP or IPPROTO_UDP. */
	__u8 proto;
	__u8 pad[3];
};

/* What to do with a hit: the new addresses and ports, the checksum deltas (RFC 1624
 * eqn. 3, ~m + m' summed over the changed 16-bit words, folded), the new MACs and the
 * output interface. packets/bytes/last_seen are written by the program only. */
struct flow_val {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u16 ip_delta;
	__u16 l4_delta;
	__u8 dmac[6];
	__u8 smac[6];
	__u32 ifindex;
	/* IPIP (TUN): the outer header's source and destination, 0 for no tunnel. */
	__be32 tun_saddr;
	__be32 tun_daddr;
	__u64 packets;
	/* IP total length summed (the engine's byte counters count the IP packet). */
	__u64 bytes;
	/* bpf_ktime_get_ns() (CLOCK_MONOTONIC) of the last hit. */
	__u64 last_seen;
	/* IPIP: the largest inner packet the egress MTU leaves room for (bigger ones pass to
	 * the engine, which answers "fragmentation needed" or drops), and the one's-complement
	 * sum of the outer header's fixed words (all but the total length). */
	__u16 tun_room;
	__u16 tun_sum;
	__u32 pad;
};

/* An IPv6 TCP segment or UDP datagram as it arrives (network byte order throughout). */
struct flow_key6 {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* flow_val for IPv6: no IP header checksum, the TCP delta covers the pseudo-header's
 * addresses and the ports. */
struct flow_val6 {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u16 l4_delta;
	__u8 dmac[6];
	__u8 smac[6];
	__u16 pad;
	__u32 ifindex;
	__u64 packets;
	/* 40 + payload length summed (the IP packet, as the engine counts). */
	__u64 bytes;
	__u64 last_seen;
};

/* Per-CPU counters, indexes of the stats array. */
enum {
	STAT_FAST_FRAMES = 0,
	STAT_FAST_BYTES = 1,
	/* Flow hit, but the checksum is partial (a local sender's offload on veth). */
	STAT_PARTIAL_CSUM = 2,
	STAT_MAX = 4,
};

#endif
