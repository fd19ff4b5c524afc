#!/usr/bin/env python3
"""h1raw.py HOST PORT [--tls]: sends stdin's bytes as they are (\\n in the input stays \\n: write
CRLF yourself) on one connection, then reads responses until the server closes or is quiet for
1.5 s. Prints one line per response: its status code, then CLOSED (the server closed the
connection) or OPEN."""
import socket, ssl, sys

host, port = sys.argv[1], int(sys.argv[2])
data = sys.stdin.buffer.read()
s = socket.create_connection((host, port), timeout=5)
if "--tls" in sys.argv:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    s = ctx.wrap_socket(s, server_hostname="localhost")
s.sendall(data)
s.settimeout(1.5)
buf, closed = b"", False
while True:
    try:
        b = s.recv(65536)
    except (socket.timeout, TimeoutError):
        break
    except (ConnectionResetError, ssl.SSLError):
        closed = True
        break
    if not b:
        closed = True
        break
    buf += b
# split the byte stream into responses (Content-Length framing; ours all have one)
while buf.startswith(b"HTTP/"):
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        break
    lines = head.split(b"\r\n")
    print(lines[0].split()[1].decode())
    n = 0
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v.strip())
    buf = rest[n:]
print("CLOSED" if closed else "OPEN")
