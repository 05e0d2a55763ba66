#!/usr/bin/env python3
"""Long-lived TCP echo streams for bench/soak.

  streams.py serve PORT             an echo server (one thread per connection)
  streams.py run HOST PORT N SECS   N streams to HOST:PORT for SECS seconds: each writes a
                                    numbered 64-byte line every second and reads it back;
                                    a stream is lost at its first error, timeout (5 s) or
                                    wrong echo. Prints one line:
                                    streams=N lost=L rounds=R  (and each loss on stderr)
Exit status 0 when it ran (whatever was lost); 2 when the streams could not be opened.
"""
import socket
import sys
import threading
import time


def serve(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(256)

    def echo(c):
        with c:
            while True:
                try:
                    b = c.recv(4096)
                except OSError:
                    return
                if not b:
                    return
                try:
                    c.sendall(b)
                except OSError:
                    return

    while True:
        c, _ = srv.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()


def run(host, port, n, secs):
    lost = []
    rounds = [0]
    lock = threading.Lock()
    socks = []
    for i in range(n):
        try:
            s = socket.create_connection((host, port), timeout=5)
        except OSError as e:
            print(f"streams: stream {i} could not connect: {e}", file=sys.stderr)
            sys.exit(2)
        s.settimeout(5)
        socks.append(s)
    end = time.monotonic() + secs

    def stream(i, s):
        k = 0
        while time.monotonic() < end:
            line = f"stream {i:03} round {k:08}".ljust(63).encode() + b"\n"
            try:
                s.sendall(line)
                got = b""
                while len(got) < len(line):
                    b = s.recv(len(line) - len(got))
                    if not b:
                        raise OSError("closed by the peer")
                    got += b
                if got != line:
                    raise OSError(f"wrong echo {got!r}")
            except OSError as e:
                with lock:
                    lost.append(i)
                print(f"streams: stream {i} lost after {k} rounds "
                      f"({time.strftime('%H:%M:%S')}): {e}", file=sys.stderr)
                return
            k += 1
            with lock:
                rounds[0] += 1
            time.sleep(1)
        s.close()

    ts = [threading.Thread(target=stream, args=(i, s)) for i, s in enumerate(socks)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(f"streams={n} lost={len(lost)} rounds={rounds[0]}")


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[:1] == ["serve"] and len(a) == 2:
        serve(int(a[1]))
    elif a[:1] == ["run"] and len(a) == 5:
        run(a[1], int(a[2]), int(a[3]), float(a[4]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
