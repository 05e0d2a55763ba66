// SPDX-License-Identifier: GPL-2.0-or-later
/* rvs XDP fast path (docs/xdp.md): established IPv4 TCP flows whose rewrite userspace
 * wrote into the flow map are rewritten and sent here; every other frame goes on to the
 * kernel stack (XDP_PASS), where rvs's AF_PACKET path handles it as without this program.
 *
 * The program decides nothing: the sans-IO engine (rvs-core director/offload.rs) chose the
 * rewrite; this only executes it, and counts. Anything unusual passes: non-IPv4, IP
 * options, fragments, SYN/FIN/RST or no ACK, a truncated or padded-short packet, a
 * checksum-partial segment, a miss. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
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
static __always_inline __u16 pseudo_sum(const struct iphdr *ip, __u16 l4_len)
{
	__u32 s = (ip->saddr & 0xffff) + (ip->saddr >> 16) + (ip->daddr & 0xffff) +
		  (ip->daddr >> 16) + bpf_htons(IPPROTO_TCP) + bpf_htons(l4_len);

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

SEC("xdp")
int rvs_fastpath(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct tcphdr *tcp;
	struct flow_key key;
	struct flow_val *v;
	__u16 tot;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return XDP_PASS;
	/* No options, not a fragment (MF or an offset; DF is fine). */
	if (ip->version != 4 || ip->ihl != 5 || ip->protocol != IPPROTO_TCP ||
	    (ip->frag_off & bpf_htons(0x3fff)))
		return XDP_PASS;
	tcp = (void *)(ip + 1);
	if ((void *)(tcp + 1) > end)
		return XDP_PASS;
	/* Handshakes and closes are the engine's (its state machine and timers). */
	if (tcp->syn || tcp->fin || tcp->rst || !tcp->ack)
		return XDP_PASS;
	tot = bpf_ntohs(ip->tot_len);
	if (tot < sizeof(*ip) + sizeof(*tcp) || (void *)ip + tot > end)
		return XDP_PASS;
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.sport = tcp->source;
	key.dport = tcp->dest;
	v = bpf_map_lookup_elem(&rvs_flows, &key);
	if (!v)
		return XDP_PASS;
	/* A local sender's segment (veth) may carry only the pseudo-header sum, which XDP
	 * cannot tell from a complete checksum but by its value; the AF_PACKET path sees
	 * the offload flag and keeps it partial. One complete checksum in 65536 matches
	 * too, and takes the userspace path, correctly. */
	if (tcp->check == pseudo_sum(ip, tot - sizeof(*ip))) {
		count(STAT_PARTIAL_CSUM, 1);
		return XDP_PASS;
	}
	ip->saddr = v->saddr;
	ip->daddr = v->daddr;
	ip->check = csum_update(ip->check, v->ip_delta);
	tcp->source = v->sport;
	tcp->dest = v->dport;
	tcp->check = csum_update(tcp->check, v->l4_delta);
	__builtin_memcpy(eth->h_dest, v->dmac, 6);
	__builtin_memcpy(eth->h_source, v->smac, 6);
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, tot);
	v->last_seen = bpf_ktime_get_ns();
	count(STAT_FAST_FRAMES, 1);
	count(STAT_FAST_BYTES, tot);
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
