#!/usr/bin/python3
"""Hostile and idle clients against the proxy's cleartext listener.

  hostile_clients.py CASE PORT

Cases: slowloris (an HTTP/1.1 head dripped a byte at a time), idle-h1 (a
connection that never sends), idle-h2 (an HTTP/2 connection that opens no
stream). Prints how many seconds until the proxy closed the connection (and
for HTTP/2 whether it said GOAWAY first); exits 1 if it stayed open for 30 s."""
import socket
import sys
import time


def closed_after(sock, drip=None):
    """Seconds until the peer closes; `drip` bytes are sent one per 0.5 s meanwhile."""
    t0 = time.monotonic()
    sock.settimeout(0.5)
    received = b""
    while time.monotonic() - t0 < 30:
        if drip:
            try:
                sock.sendall(drip[:1])
            except OSError:
                return time.monotonic() - t0, received
            drip = drip[1:] or b"x"
        try:
            chunk = sock.recv(65536)
            if not chunk:
                return time.monotonic() - t0, received
            received += chunk
        except socket.timeout:
            pass
        except OSError:
            return time.monotonic() - t0, received
    return None, received


def main():
    case, port = sys.argv[1], int(sys.argv[2])
    s = socket.create_connection(("127.0.0.1", port))
    if case == "slowloris":
        s.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n")
        seconds, _ = closed_after(s, drip=b"X-Slow: " + b"a" * 200)
    elif case == "idle-h1":
        seconds, _ = closed_after(s)
    elif case == "idle-h2":
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # preface, empty SETTINGS
        seconds, received = closed_after(s)
        frames, i = [], 0
        while i + 9 <= len(received):
            length = int.from_bytes(received[i:i + 3], "big")
            frames.append(received[i + 3])
            i += 9 + length
        print(f"frame types from the proxy: {frames}")
        if 7 not in frames:
            print("no GOAWAY")
            return 1
    else:
        raise SystemExit(f"unknown case {case}")
    if seconds is None:
        print("still open after 30 s")
        return 1
    print(f"closed by the proxy after {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
