#!/usr/bin/env python3
"""Write the seed frames of the `frame` fuzz target into corpus/frame/.

Each input is one or more records separated by SEP; a record is one flags byte (bit 0:
private port; bits 1-2: checksum status; bits 3-7: seconds to advance the clock) and an
Ethernet frame. Addresses are those of the fuzz director (fuzz/src/lib.rs). Run from fuzz/.
"""
import ipaddress
import os
import struct

SEP = b"\xffRVS\xff"
DIR_PUB = bytes([2, 0, 0, 0, 0, 1])
DIR_PRIV = bytes([2, 0, 0, 0, 0, 2])
CLIENT = bytes([2, 0, 0, 0, 0, 0x10])
RS = lambda i: bytes([2, 0, 0, 0, 1, i])
VIP4, VIP6 = "10.1.0.100", "2001:db8:1::100"
CLI4, CLI6 = "10.1.0.10", "2001:db8:1::10"


def a(s):
    return ipaddress.ip_address(s).packed


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(dst, src, etype, payload, vlan=None):
    h = dst + src
    if vlan is not None:
        h += struct.pack("!HH", 0x8100, vlan)
    return h + struct.pack("!H", etype) + payload


def ipv4(src, dst, proto, payload, ident=1, frag=0x4000, options=b""):
    ihl = 5 + len(options) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(options) + len(payload),
                    ident, frag, 64, proto, 0, a(src), a(dst)) + options
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ipv6(src, dst, nh, payload):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, 64, a(src), a(dst)) + payload


def pseudo(src, dst, proto, length):
    if ":" in src:
        return a(src) + a(dst) + struct.pack("!IxxxB", length, proto)
    return a(src) + a(dst) + struct.pack("!xBH", proto, length)


def tcp(src, dst, sport, dport, flags, seq=1000, ack=0, payload=b""):
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    seg = h + payload
    c = csum(pseudo(src, dst, 6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp(src, dst, sport, dport, payload):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = csum(pseudo(src, dst, 17, len(seg)) + seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def icmp4(typ, code, rest, payload):
    m = struct.pack("!BBH", typ, code, 0) + rest + payload
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


def icmp6(src, dst, typ, code, body):
    m = struct.pack("!BBH", typ, code, 0) + body
    c = csum(pseudo(src, dst, 58, len(m)) + m)
    return m[:2] + struct.pack("!H", c) + m[4:]


SYN, ACK, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04


def v4_tcp(dport, flags, sport=40000, src=CLI4, dst=VIP4, smac=CLIENT, dmac=DIR_PUB, **kw):
    return eth(dmac, smac, 0x0800, ipv4(src, dst, 6, tcp(src, dst, sport, dport, flags, **kw)))


def v6_tcp(dport, flags, sport=40000, src=CLI6, dst=VIP6, smac=CLIENT, dmac=DIR_PUB):
    return eth(dmac, smac, 0x86DD, ipv6(src, dst, 6, tcp(src, dst, sport, dport, flags)))


def arp(op, sha, spa, tha, tpa):
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, a(spa), tha, a(tpa))
    return eth(b"\xff" * 6 if op == 1 else DIR_PUB, sha, 0x0806, body)


seeds = {}
seeds["v4_tcp_syn_nat"] = [(0, v4_tcp(80, SYN))]
seeds["v4_tcp_syn_dr_persistent"] = [(0, v4_tcp(443, SYN))]
seeds["v4_tcp_syn_fullnat"] = [(0, v4_tcp(8000, SYN))]
seeds["v4_tcp_ftp_control"] = [
    (0, v4_tcp(21, SYN)),
    (0, v4_tcp(21, ACK | PSH, seq=1001, ack=1, payload=b"PORT 10,1,0,10,156,64\r\n")),
]
seeds["v4_udp_tunnel"] = [(0, eth(DIR_PUB, CLIENT, 0x0800,
                                  ipv4(CLI4, VIP4, 17, udp(CLI4, VIP4, 5353, 53, b"\x12\x34query"))))]
seeds["v4_tcp_syn_vlan"] = [(0, eth(DIR_PUB, CLIENT, 0x0800,
                                    ipv4(CLI4, VIP4, 6, tcp(CLI4, VIP4, 40001, 80, SYN)), vlan=10))]
seeds["v4_tcp_options"] = [(0, eth(DIR_PUB, CLIENT, 0x0800,
                                   ipv4(CLI4, VIP4, 6, tcp(CLI4, VIP4, 40002, 80, SYN),
                                        options=b"\x01\x01\x01\x00")))]
seg = tcp(CLI4, VIP4, 40003, 80, SYN, payload=b"x" * 40)
seeds["v4_fragments"] = [
    (0, eth(DIR_PUB, CLIENT, 0x0800, ipv4(CLI4, VIP4, 6, seg[:24], ident=7, frag=0x2000))),
    (0, eth(DIR_PUB, CLIENT, 0x0800, ipv4(CLI4, VIP4, 6, seg[24:], ident=7, frag=3))),
]
# A NAT connection both ways: SYN, the real server's SYN-ACK on the private port, ACK, FIN.
seeds["v4_nat_both_ways"] = [
    (0, v4_tcp(80, SYN, sport=41000)),
    (1, v4_tcp(41000, SYN | ACK, sport=8080, src="10.2.0.11", dst=CLI4, smac=RS(1), dmac=DIR_PRIV, ack=1001)),
    (1, v4_tcp(41000, SYN | ACK, sport=8080, src="10.2.0.12", dst=CLI4, smac=RS(2), dmac=DIR_PRIV, ack=1001)),
    (0 | (1 << 3), v4_tcp(80, ACK, sport=41000, seq=1001, ack=1)),
    (0, v4_tcp(80, FIN | ACK, sport=41000, seq=1001, ack=1)),
    (0 | (31 << 3), v4_tcp(80, RST, sport=41000, seq=1002)),
]
seeds["v4_icmp_echo"] = [(0, eth(DIR_PUB, CLIENT, 0x0800, ipv4(CLI4, VIP4, 1, icmp4(8, 0, b"\0\1\0\1", b"ping"))))]
inner = ipv4("10.2.0.11", CLI4, 6, tcp("10.2.0.11", CLI4, 8080, 41000, SYN | ACK))[:28]
seeds["v4_icmp_error_quoting"] = [
    (0, v4_tcp(80, SYN, sport=41000)),
    (0, eth(DIR_PUB, CLIENT, 0x0800, ipv4(CLI4, VIP4, 1, icmp4(3, 4, b"\0\0\x05\xdc",
                                                               ipv4(VIP4, CLI4, 6, tcp(VIP4, CLI4, 80, 41000, SYN | ACK))[:28])))),
    (1, eth(DIR_PRIV, RS(1), 0x0800, ipv4("10.2.0.11", CLI4, 1, icmp4(3, 3, b"\0\0\0\0", inner)))),
]
seeds["v4_partial_csum"] = [(2 << 1, v4_tcp(80, SYN))]
seeds["arp_request_vip"] = [(0, arp(1, CLIENT, CLI4, b"\0" * 6, VIP4))]
seeds["arp_reply_rs"] = [(1, arp(2, RS(3), "10.2.0.13", DIR_PRIV, "10.2.0.1"))]
seeds["v6_tcp_syn"] = [(0, v6_tcp(80, SYN))]
seeds["v6_tcp_both_ways"] = [
    (0, v6_tcp(80, SYN, sport=42000)),
    (1, v6_tcp(42000, SYN | ACK, sport=80, src="2001:db8:2::11", dst=CLI6, smac=RS(1), dmac=DIR_PRIV)),
    (0, v6_tcp(80, ACK, sport=42000)),
]
seeds["v6_udp_gue"] = [(0, eth(DIR_PUB, CLIENT, 0x86DD,
                                ipv6(CLI6, VIP6, 17, udp(CLI6, VIP6, 5353, 53, b"query"))))]
ns_target = a(VIP6)
ns = icmp6(CLI6, "ff02::1:ff00:100", 135, 0, b"\0\0\0\0" + ns_target + b"\x01\x01" + CLIENT)
seeds["v6_neighbor_solicitation"] = [(0, eth(bytes.fromhex("3333ff000100"), CLIENT, 0x86DD,
                                              ipv6(CLI6, "ff02::1:ff00:100", 58, ns)))]
frag_hdr = struct.pack("!BBHI", 6, 0, 0x0001, 99)
seeds["v6_fragment"] = [(0, eth(DIR_PUB, CLIENT, 0x86DD,
                                ipv6(CLI6, VIP6, 44, frag_hdr + tcp(CLI6, VIP6, 42001, 80, SYN))))]
seeds["v6_partial_csum"] = [(3 << 1, v6_tcp(80, SYN))]

os.makedirs("corpus/frame", exist_ok=True)
for name, recs in seeds.items():
    with open(os.path.join("corpus/frame", name), "wb") as f:
        f.write(SEP.join(bytes([flags]) + frame for flags, frame in recs))
print(len(seeds), "seeds")
