#!/usr/bin/env python3
"""sd_notify.py SOCKET SECONDS: binds a unix datagram socket at SOCKET (what systemd gives a
Type=notify service as NOTIFY_SOCKET) and prints each message received, one line per field
("READY=1", ...), until SECONDS pass."""
import os, socket, sys, time
path, secs = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
end = time.time() + secs
while time.time() < end:
    s.settimeout(max(0.05, end - time.time()))
    try:
        d = s.recv(4096)
    except socket.timeout:
        break
    for line in d.decode(errors="replace").split("\n"):
        if line:
            print(line.split("=")[0] + "=" + ("<n>" if line.startswith("MONOTONIC_USEC=") else line.split("=", 1)[1]), flush=True)
