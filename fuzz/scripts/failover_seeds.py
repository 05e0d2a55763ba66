#!/usr/bin/env python3
"""Write the seeds of the failover fuzz targets into corpus/sync_message/,
corpus/vrrp_advert/ and corpus/heartbeat/. Run from fuzz/; Python standard library only.

sync_message: connection-sync datagrams (version 1 and 0) whose records name the fuzz
director's services (fuzz/src/lib.rs), so that a backup applies them.
vrrp_advert: one byte (bit 0: IPv6) then a VRRP advertisement with a right checksum for
10.0.0.1 -> 224.0.0.18 or fe80::1 -> ff02::12, as the target emits them.
heartbeat: piranha pulse datagrams.
"""
import ipaddress
import os
import struct


def a(s):
    return ipaddress.ip_address(s).packed


def fold(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def sum16(data):
    if len(data) % 2:
        data += b"\0"
    return sum(struct.unpack("!%dH" % (len(data) // 2), data))


def write(target, name, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- sync messages ----
TCP, UDP = 6, 17
MASQ, TUNNEL, DROUTE = 0, 2, 3
NOOUTPUT, INACTIVE, OUT_SEQ, TEMPLATE = 0x80, 0x100, 0x200, 0x1000
F_PARAM, RVS_LOCAL = 0x40, 0x30


def opt(t, data):
    return bytes([t, len(data)]) + data


def record(proto, flags, state, c, v, d, timeout=900, fwmark=0, options=b""):
    (ca, cp), (va, vp), (da, dp) = c, v, d
    v6 = ":" in ca
    body = struct.pack("!IHHHHII", flags, state, cp, vp, dp, fwmark, timeout)
    body += a(ca) + a(va) + a(da) + options
    size = 4 + len(body)
    return struct.pack("!BBH", 1 if v6 else 0, proto, size) + body


def message(records, syncid=0):
    out = b""
    for i, r in enumerate(records):
        if i:
            out += b"\0" * ((4 - len(out) % 4) % 4)
        out += r
    return struct.pack("!BBHBBH", 0, syncid, 8 + len(out), len(records), 1, 0) + out


CLI = ("10.1.0.10", 40000)
nat = record(TCP, MASQ, 1, CLI, ("10.1.0.100", 80), ("10.2.0.11", 8080))
dr = record(TCP, DROUTE | NOOUTPUT, 1, CLI, ("10.1.0.100", 443), ("10.2.0.11", 443))
tpl = record(0 + TCP, TEMPLATE | DROUTE | INACTIVE | NOOUTPUT, 0, ("10.1.0.10", 0),
             ("10.1.0.100", 443), ("10.2.0.11", 443), timeout=300)
fullnat = record(TCP, MASQ, 1, CLI, ("10.1.0.100", 8000), ("10.2.0.13", 80),
                 options=opt(RVS_LOCAL | F_PARAM, a("10.2.0.250") + struct.pack("!H", 20001)))
udp_tun = record(UDP, TUNNEL | NOOUTPUT, 0, ("10.1.0.10", 5353), ("10.1.0.100", 53),
                 ("10.2.0.13", 53), timeout=300)
fwm_tpl = record(0, TEMPLATE | DROUTE | INACTIVE | NOOUTPUT, 0, ("10.1.0.10", 0),
                 ("0.0.0.7", 0), ("10.2.0.12", 0), timeout=360, fwmark=7)
fwm_conn = record(TCP, DROUTE | NOOUTPUT, 1, CLI, ("10.1.0.100", 9000), ("10.2.0.12", 9000),
                  fwmark=7)
ftp_seq = record(TCP, MASQ | OUT_SEQ, 1, CLI, ("10.1.0.100", 21), ("10.2.0.11", 21),
                 options=opt(1, struct.pack("!6I", 0, 0, 0, 5000, 1, 0)))
v6_nat = record(TCP, MASQ, 1, ("2001:db8:1::10", 40000), ("2001:db8:1::100", 80),
                ("2001:db8:2::11", 80))
v6_full = record(TCP, INACTIVE, 4, ("2001:db8:1::10", 40001), ("2001:db8:1::100", 80),
                 ("2001:db8:2::12", 80), timeout=120,
                 options=opt(RVS_LOCAL | F_PARAM, a("2001:db8:2::250") + struct.pack("!H", 20002)))
pe = record(UDP, MASQ, 0, ("2001:db8::1", 5060), ("2001:db8::100", 5060), ("fd00::11", 5060),
            timeout=300, options=opt(2, b"call-id@example") + opt(3, b"sip"))
unknown = record(TCP, MASQ, 1, CLI, ("10.1.0.100", 80), ("10.2.0.12", 8080),
                 options=opt(0x3f | F_PARAM, b"\xaa\xbb") + opt(9, b"\x01"))

write("sync_message", "v1_tcp_dr_vector", message([record(
    TCP, DROUTE, 1, ("192.0.2.1", 40000), ("198.51.100.10", 80), ("10.0.0.11", 80))], 7))
write("sync_message", "v1_services", message([nat, dr, tpl, udp_tun]))
write("sync_message", "v1_fullnat_local", message([fullnat, v6_full]))
write("sync_message", "v1_fwmark", message([fwm_tpl, fwm_conn]))
write("sync_message", "v1_ftp_seq", message([ftp_seq]))
write("sync_message", "v1_v6", message([v6_nat, pe]))
write("sync_message", "v1_unknown_options", message([unknown, nat]))
write("sync_message", "v1_update_then_close", message([
    nat, record(TCP, MASQ | INACTIVE, 5, CLI, ("10.1.0.100", 80), ("10.2.0.11", 8080),
                timeout=120)]))
cut = message([nat, dr])
write("sync_message", "v1_truncated", cut[:2] + struct.pack("!H", len(cut) - 6) + cut[4:-6])

v0 = struct.pack("!BBHHH4s4s4sHH", 0, TCP, 40000, 80, 8080, a("10.1.0.10"), a("10.1.0.100"),
                 a("10.2.0.11"), MASQ, 1)
v0_seq = struct.pack("!BBHHH4s4s4sHH", 0, TCP, 40001, 21, 21, a("10.1.0.10"),
                     a("10.1.0.100"), a("10.2.0.11"), OUT_SEQ, 1) + struct.pack("<6I", 0, 0, 0, 9, 2, 0)
body = v0 + v0_seq
write("sync_message", "v0_two", struct.pack("!BBH", 2, 0, 4 + len(body)) + body)

# ---- VRRP ----
SRC4, DST4 = a("10.0.0.1"), a("224.0.0.18")
SRC6, DST6 = a("fe80::1"), a("ff02::12")


def vrrp(version, vrid, prio, addrs, interval, auth_type=0, auth=b"", six=False):
    if version == 2:
        hdr = struct.pack("!BBBBBBH", 0x21, vrid, prio, len(addrs), auth_type, interval, 0)
    else:
        hdr = struct.pack("!BBBBHH", 0x31, vrid, prio, len(addrs), interval & 0x0FFF, 0)
    msg = hdr + b"".join(a(x) for x in addrs)
    if version == 2:
        msg += auth.ljust(8, b"\0")
    if version == 2:
        acc = 0
    elif six:
        acc = sum16(SRC6 + DST6 + struct.pack("!I3xB", len(msg), 112))
    else:
        acc = sum16(SRC4 + DST4 + struct.pack("!xBH", 112, len(msg)))
    ck = (~fold(acc + sum16(msg))) & 0xFFFF
    return msg[:6] + struct.pack("!H", ck) + msg[8:]


write("vrrp_advert", "v2_pass", b"\0" + vrrp(2, 51, 100, ["192.168.1.100", "192.168.1.101"], 1,
                                              1, b"secret"))
write("vrrp_advert", "v2_none", b"\0" + vrrp(2, 1, 255, ["10.1.0.100"], 3))
write("vrrp_advert", "v3_v4", b"\0" + vrrp(3, 7, 150, ["10.1.0.100"], 100))
write("vrrp_advert", "v3_v6", b"\1" + vrrp(3, 9, 0, ["fe80::100", "2001:db8:1::100"], 50,
                                           six=True))
bad = bytearray(vrrp(3, 7, 150, ["10.1.0.100"], 100))
bad[4] |= 0xF0
write("vrrp_advert", "v3_reserved_bits", b"\0" + bytes(bad))

# ---- heartbeats ----
RUNNING, STOPPED = 0xBDADDBDA, 0xADBDDABD
write("heartbeat", "running_le", struct.pack("<I", RUNNING))
write("heartbeat", "running_be", struct.pack(">I", RUNNING))
write("heartbeat", "stopped_le", struct.pack("<I", STOPPED))
write("heartbeat", "stopped_be", struct.pack(">I", STOPPED))
write("heartbeat", "fos_magic", struct.pack("<I", 0xDEAFBABE))
write("heartbeat", "short", b"\xda\xdb\xad")
