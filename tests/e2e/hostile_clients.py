#!/usr/bin/python3
"""Hostile and idle clients against the proxy's cleartext listener.

  hostile_clients.py CASE PORT

Cases that wait for the proxy to close the connection (exit 1 if it stays
open for 30 s; prints how long it took, and for HTTP/2 the GOAWAY's error):
  slowloris      an HTTP/1.1 head dripped a byte at a time
  idle-h1        a connection that never sends
  idle-h2        an HTTP/2 connection that opens no stream
  h2-slow-head   an HTTP/2 HEADERS frame whose header block never ends
  h2-continuation-flood  HEADERS followed by a stream of tiny CONTINUATIONs
  h2-rapid-reset streams opened and reset as fast as possible (CVE-2023-44487)
Cases that check an answer:
  h2-max-streams PATH N   N watches on one connection: those past the proxy's
                 SETTINGS_MAX_CONCURRENT_STREAMS are refused, the rest served
  h2-big-headers 120 KB of headers over HTTP/2 (the caller sets a 64 KiB limit): 431
  idle-many N    N connections that never send, held for 20 s while a
                 well-behaved client LISTs; prints its latencies
  never-reads PATH  a LIST that is never read, held for 15 s (prints nothing:
                 the caller measures the proxy meanwhile)
  never-reads-h2 PATH  the same over HTTP/2: the stream's window is never
                 replenished and the socket never read"""
import resource
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
import hpack


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


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def request_block(path, extra=()):
    return hpack.Encoder().encode([(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1"),
                                   (":path", path), ("user-agent", "kcp-hostile")] + list(extra))


def goaway_error(received):
    """The error code of the first GOAWAY in `received` (raw frames), or None."""
    i = 0
    while i + 9 <= len(received):
        length = int.from_bytes(received[i:i + 3], "big")
        if received[i + 3] == 7 and i + 9 + 8 <= len(received):
            return int.from_bytes(received[i + 13:i + 17], "big")
        i += 9 + length
    return None


def h2_client(port):
    s = socket.create_connection(("127.0.0.1", port))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    return s, conn


def h2_request(conn, path, extra=()):
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", path),
                            ("user-agent", "kcp-hostile")] + list(extra), end_stream=True)
    return sid


def h2_events(s, conn, until, seconds=20):
    """Reads events until `until(events so far)` or the connection ends."""
    events, deadline = [], time.monotonic() + seconds
    s.settimeout(0.5)
    while time.monotonic() < deadline and not until(events):
        try:
            data = s.recv(1 << 16)
        except socket.timeout:
            continue
        if not data:
            break
        for e in conn.receive_data(data):
            events.append(e)
            if isinstance(e, h2.events.DataReceived):
                conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        s.sendall(conn.data_to_send())
    return events


def main():
    case, port = sys.argv[1], int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    if case == "h2-max-streams":
        path, n = sys.argv[3], int(sys.argv[4])
        s, conn = h2_client(port)
        ids = [h2_request(conn, path) for _ in range(n)]
        s.sendall(conn.data_to_send())
        status = lambda ev: {e.stream_id for e in ev if isinstance(e, h2.events.ResponseReceived)}
        refused = lambda ev: {e.stream_id for e in ev if isinstance(e, h2.events.StreamReset)}
        events = h2_events(s, conn, lambda ev: len(status(ev) | refused(ev)) >= n, seconds=30)
        ok, no = status(events), refused(events)
        codes = {e.error_code for e in events if isinstance(e, h2.events.StreamReset)}
        print(f"{len(ok)} of {n} streams answered, {len(no)} refused (RST_STREAM codes {sorted(int(c) for c in codes)})")
        return 0 if len(ok) > 0 and len(ok) + len(no) == n and no and min(no) > max(ok) else 1
    if case == "h2-big-headers":
        # 120 KB of headers: past a 64 KiB --max-request-header-bytes, within
        # what 8 CONTINUATION frames carry (a larger block is a flood).
        s, conn = h2_client(port)
        h2_request(conn, "/api/v1/namespaces/default/configmaps", [(f"x-big-{i}", "a" * 30000) for i in range(4)])
        s.sendall(conn.data_to_send())
        events = h2_events(s, conn, lambda ev: any(isinstance(e, (h2.events.ResponseReceived, h2.events.StreamReset,
                                                                  h2.events.ConnectionTerminated)) for e in ev))
        got = [(type(e).__name__, dict(e.headers).get(":status") if isinstance(e, h2.events.ResponseReceived) else "")
               for e in events if isinstance(e, (h2.events.ResponseReceived, h2.events.StreamReset,
                                                 h2.events.ConnectionTerminated))]
        print(f"the proxy answered: {got}")
        return 0 if any(status == "431" for _, status in got) else 1
    if case == "idle-many":
        n = int(sys.argv[3])
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
        print(f"{len(idle)} idle connections open")
        times = []
        for _ in range(10):
            t0 = time.monotonic()
            c = socket.create_connection(("127.0.0.1", port))
            c.sendall(b"GET /api/v1/namespaces/default/configmaps?resourceVersion=0 HTTP/1.1\r\nHost: x\r\n"
                      b"User-Agent: kcp-hostile\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := c.recv(1 << 16):
                data += chunk
            c.close()
            times.append((time.monotonic() - t0) * 1000)
            if not data.startswith(b"HTTP/1.1 200"):
                print(f"the well-behaved client got {data[:80]!r}")
                return 1
            time.sleep(2)
        still = sum(1 for c in idle if c.fileno() >= 0)
        print(f"a well-behaved client's LISTs meanwhile: {', '.join(f'{t:.0f}' for t in times)} ms; "
              f"{still} idle connections held")
        return 0 if max(times) < 1000 else 1
    if case == "never-reads-h2":
        s, conn = h2_client(port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        h2_request(conn, sys.argv[3])
        s.sendall(conn.data_to_send())
        time.sleep(15)
        s.close()
        return 0
    if case == "never-reads":
        c = socket.create_connection(("127.0.0.1", port))
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.sendall(f"GET {sys.argv[3]} HTTP/1.1\r\nHost: x\r\nUser-Agent: kcp-hostile\r\n\r\n".encode())
        time.sleep(15)
        c.close()
        return 0
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
    elif case == "h2-slow-head":
        # HEADERS without END_HEADERS: the header block is never finished.
        block = request_block("/api/v1/namespaces")
        s.sendall(PREFACE + frame(4, 0, 0) + frame(1, 0x1, 1, block[:5]))  # END_STREAM, not END_HEADERS
        seconds, received = closed_after(s)
    elif case == "h2-continuation-flood":
        block = request_block("/api/v1/namespaces", [("x-pad", "a" * 2000)])
        out = PREFACE + frame(4, 0, 0) + frame(1, 0x1, 1, block[:1])
        out += b"".join(frame(9, 0, 1, block[i:i + 1]) for i in range(1, min(len(block) - 1, 1000)))
        try:
            s.sendall(out)
        except OSError:
            pass
        seconds, received = closed_after(s)
    elif case == "h2-rapid-reset":
        s.sendall(PREFACE + frame(4, 0, 0))
        block = request_block("/api/v1/namespaces/default/configmaps?resourceVersion=0")
        sent = 0
        try:
            for sid in range(1, 2 * 20000, 2):  # HEADERS then RST_STREAM(CANCEL), 20,000 times
                s.sendall(frame(1, 0x5, sid, block) + frame(3, 0, sid, (8).to_bytes(4, "big")))
                sent += 1
        except OSError:
            pass
        print(f"sent {sent} HEADERS + RST_STREAM pairs")
        seconds, received = closed_after(s)
    else:
        raise SystemExit(f"unknown case {case}")
    if seconds is None:
        print("still open after 30 s")
        return 1
    error = goaway_error(received) if case.startswith("h2-") else None
    print(f"closed by the proxy after {seconds:.1f} s" + (f", GOAWAY error code {error}" if error is not None else ""))
    if case.startswith("h2-") and error is None:
        print("no GOAWAY")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
