#!/usr/bin/env python3
"""Who closes first, and how late the server's FIN reaches the client.

Reads `tcpdump -tt -n -S` text (stdin) captured on the client's interface during
connection-per-request load against port 80, and prints one line:

  conns=N fin_p50_us=.. fin_p99_us=.. fin_max_us=.. client_first_pct=..

fin_*_us: per connection, the time from the last server segment carrying data to the
segment carrying the server's FIN (0 when the FIN rides on the data), as the client's
interface saw them. client_first_pct: connections whose client sent its FIN before the
server's FIN arrived; the client then ends in TIME_WAIT (a client that closes after
the FIN ends in LAST_ACK and keeps no state).
"""
import re
import sys

LINE = re.compile(
    r"^(\d+\.\d+) IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): "
    r"Flags \[([^\]]*)\].*?length (\d+)"
)


def pct(v, p):
    if not v:
        return 0.0
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    conns = {}
    for line in sys.stdin:
        m = LINE.match(line)
        if not m:
            continue
        t, _sa, sp, _da, dp, flags, length = m.groups()
        t = float(t)
        length = int(length)
        if sp == "80":
            c = conns.setdefault(dp, {})
            if length > 0:
                c["data"] = t
            if "F" in flags and "sfin" not in c:
                c["sfin"] = t
        elif dp == "80":
            c = conns.setdefault(sp, {})
            if "S" in flags and "." not in flags:
                # A new connection on a reused port: start over.
                conns[sp] = c = {"syn": t}
            if "F" in flags and "cfin" not in c:
                c["cfin"] = t
    delays = []
    react = []
    first_delays = []
    first = 0
    done = 0
    for c in conns.values():
        if "syn" not in c or "data" not in c or "sfin" not in c or "cfin" not in c:
            continue
        done += 1
        delays.append(max(0.0, c["sfin"] - c["data"]) * 1e6)
        react.append((c["cfin"] - c["data"]) * 1e6)
        if c["cfin"] < c["sfin"]:
            first += 1
            first_delays.append(delays[-1])
    print(
        "conns=%d fin_p50_us=%.0f fin_p90_us=%.0f fin_p99_us=%.0f fin_max_us=%.0f "
        "client_first_pct=%.1f"
        % (
            done,
            pct(delays, 50),
            pct(delays, 90),
            pct(delays, 99),
            max(delays) if delays else 0.0,
            100.0 * first / done if done else 0.0,
        )
    )
    if "-v" in sys.argv:
        # How soon after the data the client closes, and the FIN delays it beat.
        print(
            "  client_close_after_data_us p1=%.0f p10=%.0f p50=%.0f; "
            "fin delay of client-first conns p10=%.0f p50=%.0f"
            % (pct(react, 1), pct(react, 10), pct(react, 50),
               pct(first_delays, 10), pct(first_delays, 50))
        )


if __name__ == "__main__":
    main()
