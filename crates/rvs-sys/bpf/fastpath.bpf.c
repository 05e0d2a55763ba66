// SPDX-License-Identifier: GPL-2.0-or-later
/* rvs XDP fast path (docs/xdp.md): established IPv4 and IPv6 TCP (and UDP) flows whose rewrite userspace
 * wrote into the flow map are rewritten and sent here; every other frame goes on to the
 * kernel stack (XDP_PASS), where rvs's AF_PACKET path handles it as without this program.
 *
 * The program decides nothing: the sans-IO engine (rvs-core director/offload.rs) chose the
 * rewrite; this only executes it, and counts. Anything unusual passes: neither IPv4 nor
 * IPv6, IP options or IPv6 extension headers, fragments, neither TCP nor UDP, a TCP
 * SYN/FIN/RST or no ACK, a truncated or padded-short packet, a
 * checksum-partial segment, a miss. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "fastpath.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} rvs_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key6);
	__type(value, struct flow_val6);
} rvs_flows6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} rvs_stats SEC(".maps");

static __always_inline void count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&rvs_stats, &idx);

	if (v)
		*v += n;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), the ~m + m' part precomputed (delta). */
static __always_inline __u16 csum_update(__u16 hc, __u16 delta)
{
	__u32 s = (__u16)~hc + (__u32)delta;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* The folded pseudo-header sum a checksum-partial TCP segment carries in its checksum
 * field (tcp_v4_send_check(): th->check = ~tcp_v4_check(len, saddr, daddr, 0)). */
static __always_inline __u16 pseudo_sum(const struct iphdr *ip, __u8 proto, __u16 l4_len)
{
	__u32 s = (ip->saddr & 0xffff) + (ip->saddr >> 16) + (ip->daddr & 0xffff) +
		  (ip->daddr >> 16) + bpf_htons(proto) + bpf_htons(l4_len);

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* The TCP or UDP header at `l4`: its checksum field, or NULL when the frame passes (not
 * TCP or UDP, truncated, a TCP SYN/FIN/RST or no ACK). `min` gets the header's size. */
static __always_inline __u16 *l4_csum(void *l4, void *end, __u8 proto, __u16 *min)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > end)
			return 0;
		/* Handshakes and closes are the engine's (its state machine and timers). */
		if (tcp->syn || tcp->fin || tcp->rst || !tcp->ack)
			return 0;
		*min = sizeof(*tcp);
		return &tcp->check;
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > end)
			return 0;
		*min = sizeof(*udp);
		return &udp->check;
	}
	return 0;
}

/* The ports and the L4 checksum. A UDP checksum of 0 (none) stays 0 and a computed 0 goes
 * out as 0xffff (RFC 768), as the engine's rewrite does. */
static __always_inline void rewrite_l4(__be16 *ports, __u16 *csum, __u8 proto, __be16 sport,
				       __be16 dport, __u16 delta)
{
	__u16 c;

	ports[0] = sport;
	ports[1] = dport;
	if (proto == IPPROTO_UDP && *csum == 0)
		return;
	c = csum_update(*csum, delta);
	if (proto == IPPROTO_UDP && c == 0)
		c = 0xffff;
	*csum = c;
}

static __always_inline __u32 sum_addr6(const __u8 *a)
{
	const __u16 *w = (const __u16 *)a;
	__u32 s = 0;

#pragma unroll
	for (int i = 0; i < 8; i++)
		s += w[i];
	return s;
}

/* The folded IPv6 pseudo-header sum (RFC 8200 section 8.1: addresses, upper-layer length,
 * next header) a checksum-partial segment carries (tcp_v6_send_check()). */
static __always_inline __u16 pseudo_sum6(const struct ipv6hdr *ip6, __u8 proto, __u16 l4_len)
{
	__u32 s = sum_addr6(ip6->saddr.in6_u.u6_addr8) + sum_addr6(ip6->daddr.in6_u.u6_addr8) +
		  bpf_htons(proto) + bpf_htons(l4_len);

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* An IPv6 TCP segment: the same checks and rewrite as IPv4 but for what IPv6 has not (an
 * IP header checksum) and what it has (extension headers, which pass; a fragment header is
 * one). The hop limit is left as it is, as the engine leaves it. */
static __always_inline int fast6(struct xdp_md *ctx, struct ethhdr *eth, void *end)
{
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct flow_key6 key = {};
	struct flow_val6 *v;
	__be16 *ports;
	__u16 *csum;
	__u16 plen, min = 0;

	if ((void *)(ip6 + 1) > end)
		return XDP_PASS;
	if (ip6->version != 6)
		return XDP_PASS;
	ports = (void *)(ip6 + 1);
	csum = l4_csum(ports, end, ip6->nexthdr, &min);
	if (!csum)
		return XDP_PASS;
	plen = bpf_ntohs(ip6->payload_len);
	if (plen < min || (void *)ports + plen > end)
		return XDP_PASS;
	__builtin_memcpy(key.saddr, ip6->saddr.in6_u.u6_addr8, 16);
	__builtin_memcpy(key.daddr, ip6->daddr.in6_u.u6_addr8, 16);
	key.sport = ports[0];
	key.dport = ports[1];
	key.proto = ip6->nexthdr;
	v = bpf_map_lookup_elem(&rvs_flows6, &key);
	if (!v)
		return XDP_PASS;
	if (*csum == pseudo_sum6(ip6, key.proto, plen)) {
		count(STAT_PARTIAL_CSUM, 1);
		return XDP_PASS;
	}
	__builtin_memcpy(ip6->saddr.in6_u.u6_addr8, v->saddr, 16);
	__builtin_memcpy(ip6->daddr.in6_u.u6_addr8, v->daddr, 16);
	rewrite_l4(ports, csum, key.proto, v->sport, v->dport, v->l4_delta);
	__builtin_memcpy(eth->h_dest, v->dmac, 6);
	__builtin_memcpy(eth->h_source, v->smac, 6);
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, sizeof(*ip6) + plen);
	v->last_seen = bpf_ktime_get_ns();
	count(STAT_FAST_FRAMES, 1);
	count(STAT_FAST_BYTES, sizeof(*ip6) + plen);
	if (v->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(v->ifindex, 0);
}

/* TUN (`ip_vs_tunnel_xmit()`, IPIP): put an outer IPv4 header and a new Ethernet header in
 * front of the packet, as the engine's `encapsulate()` builds them: TTL 64, TOS 0, no DF,
 * ID 0, protocol 4, the director's address on the egress link to the real server's. The
 * inner packet is left as it is (the frame's old Ethernet header is overwritten). Nonzero
 * when the frame could not be grown. */
static __always_inline int ipip(struct xdp_md *ctx, struct flow_val *v, __u16 inner)
{
	struct ethhdr *eth;
	struct iphdr *o;
	void *data, *end;
	__u32 sum;

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return 1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	o = (void *)(eth + 1);
	if ((void *)(o + 1) > end)
		return 1;
	__builtin_memcpy(eth->h_dest, v->dmac, 6);
	__builtin_memcpy(eth->h_source, v->smac, 6);
	eth->h_proto = bpf_htons(ETH_P_IP);
	o->version = 4;
	o->ihl = 5;
	o->tos = 0;
	o->tot_len = bpf_htons(inner + sizeof(*o));
	o->id = 0;
	o->frag_off = 0;
	o->ttl = 64;
	o->protocol = IPPROTO_IPIP;
	o->saddr = v->tun_saddr;
	o->daddr = v->tun_daddr;
	sum = (__u32)v->tun_sum + o->tot_len;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	o->check = (__u16)~sum;
	return 0;
}

SEC("xdp")
int rvs_fastpath(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct flow_key key = {};
	struct flow_val *v;
	struct iphdr *ip;
	__be16 *ports;
	__u16 *csum;
	__u16 tot, min = 0;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return fast6(ctx, eth, end);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return XDP_PASS;
	/* No options, not a fragment (MF or an offset; DF is fine). */
	if (ip->version != 4 || ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff)))
		return XDP_PASS;
	ports = (void *)(ip + 1);
	csum = l4_csum(ports, end, ip->protocol, &min);
	if (!csum)
		return XDP_PASS;
	tot = bpf_ntohs(ip->tot_len);
	if (tot < sizeof(*ip) + min || (void *)ip + tot > end)
		return XDP_PASS;
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.sport = ports[0];
	key.dport = ports[1];
	key.proto = ip->protocol;
	v = bpf_map_lookup_elem(&rvs_flows, &key);
	if (!v)
		return XDP_PASS;
	/* A local sender's segment (veth) may carry only the pseudo-header sum, which XDP
	 * cannot tell from a complete checksum but by its value; the AF_PACKET path sees
	 * the offload flag and keeps it partial. One complete checksum in 65536 matches
	 * too, and takes the userspace path, correctly. */
	if (*csum == pseudo_sum(ip, key.proto, tot - sizeof(*ip))) {
		count(STAT_PARTIAL_CSUM, 1);
		return XDP_PASS;
	}
	if (v->tun_daddr) {
		if (tot > v->tun_room)
			return XDP_PASS;
	} else {
		ip->saddr = v->saddr;
		ip->daddr = v->daddr;
		ip->check = csum_update(ip->check, v->ip_delta);
		rewrite_l4(ports, csum, key.proto, v->sport, v->dport, v->l4_delta);
		__builtin_memcpy(eth->h_dest, v->dmac, 6);
		__builtin_memcpy(eth->h_source, v->smac, 6);
	}
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, tot);
	v->last_seen = bpf_ktime_get_ns();
	count(STAT_FAST_FRAMES, 1);
	count(STAT_FAST_BYTES, tot);
	if (v->tun_daddr && ipip(ctx, v, tot))
		return XDP_ABORTED;
	if (v->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(v->ifindex, 0);
}

/* For a veth peer (lab): XDP_PASS only. A veth transmits redirected frames only into a
 * peer whose NAPI is on, which an XDP program (or GRO) turns on. */
SEC("xdp")
int rvs_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
