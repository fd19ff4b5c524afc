#!/usr/bin/env bash
# cdn-dns over TCP must stay usable while one client trickles and others hold idle connections.
# Before the fix, 600 connections from 127.0.0.1 that each sent one byte of a query per second
# held all 512 slots (every byte restarted the idle timer) and every legitimate TCP query failed.
# Now (defaults, docs/DNS.md): one address holds at most 32 connections per worker
# (tcp_max_connections_per_address), a message must be complete 2 s after its first byte
# (tcp_message_timeout), and a full table closes its oldest idle connection for a newcomer.
# A python driver runs, for ~13 s:
#   0 s      600 trickling connections from 127.0.0.1, one byte of a query a second (the closed
#            ones are reopened each second: at most 600 connects a second);
#   4 s      an idle flood: 32 silent connections from each of 127.0.0.10 .. 127.0.0.29 (640);
#   1-12 s   12 queries with dig +tcp from 127.0.0.2, a new connection each.
# The config only moves the ports: the TCP limits under test are the defaults.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
plan 8

DNS=$(bin cdn-dns)
P=$(free_port)
A=$(free_port)
sed -e "s/127.0.0.1:5399/127.0.0.1:$P/" -e "s/127.0.0.1:5398/127.0.0.1:$A/" \
    -e 's|health: http://[^ ]*|health: ~|' \
    "$top_srcdir/dns/examples/bench.yaml" > "$T/dns.yaml"
start dns "$DNS" -c "$T/dns.yaml" -p "$T/dns.pid"
wait_port 127.0.0.1 "$P" || bail "cdn-dns did not start"
q() { dig @127.0.0.1 -p "$P" -b 127.0.0.2 +tcp +time=2 +tries=1 +short www.shop.test A; }
is "$(q)" 127.0.10.1 "a TCP query is answered before the flood"

cat > "$T/flood.py" <<'PY'
import resource, selectors, socket, struct, subprocess, sys, time

port = int(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != resource.RLIM_INFINITY and soft < 4096:
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096 if hard == resource.RLIM_INFINITY else min(hard, 4096), hard))
qname = b"".join(bytes([len(l)]) + l for l in b"www.shop.test".split(b".")) + b"\0"
msg = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
Q = struct.pack(">H", len(msg)) + msg          # 33 bytes: at a byte a second, never complete here
sel = selectors.DefaultSelector()
t0 = time.monotonic()
def now():
    return time.monotonic() - t0

class Conn:
    def __init__(self, src, batch):
        self.batch, self.sent, self.closed, self.first = batch, 0, None, None
        self.s = socket.socket()
        self.s.bind((src, 0))
        self.s.settimeout(1)
        self.s.connect(("127.0.0.1", port))
        self.s.setblocking(False)
        self.opened = now()
        sel.register(self.s, selectors.EVENT_READ, self)
    def trickle(self):
        if self.closed is None and self.sent < len(Q):
            try:
                self.s.send(Q[self.sent:self.sent + 1])
                if self.first is None: self.first = now()
                self.sent += 1
            except OSError:
                self.gone()
    def gone(self):
        if self.closed is None:
            self.closed = now()
            sel.unregister(self.s)
            self.s.close()

def connect(src, batch):
    try:
        return Conn(src, batch)
    except OSError:
        return None

def pump(until):  # notes every connection the server closes, until `until`
    while now() < until:
        for key, _ in sel.select(timeout=max(0.0, min(0.05, until - now()))):
            c = key.data
            try:
                if c.s.recv(4096) == b"": c.gone()
            except BlockingIOError:
                pass
            except OSError:
                c.gone()

END = 13.0
dig_at = [1.2, 2.0, 2.8, 3.6] + [5.0 + i for i in range(8)]
digs, trick, idle = [], [], []
for _ in range(600):
    c = connect("127.0.0.1", 0)
    if c: c.trickle(); trick.append(c)
pump(0.7)
print("batch0_open=%d" % sum(1 for c in trick if c.closed is None))
tick, batch = 1.0, 1
while now() < END:
    pump(min([tick, END] + dig_at[:1] + ([4.0] if not idle else [])))
    if dig_at and now() >= dig_at[0]:
        dig_at.pop(0)
        digs.append(subprocess.Popen(["dig", "@127.0.0.1", "-p", str(port), "-b", "127.0.0.2", "+tcp", "+time=2",
                                      "+tries=1", "+short", "www.shop.test", "A"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    if not idle and now() >= 4.0:
        for a in range(10, 30):
            for _ in range(32):
                c = connect("127.0.0.%d" % a, 0)
                if c: idle.append(c)
        pump(now() + 0.7)
        print("idle_opened=%d" % len(idle))
        print("idle_newest_open=%d" % sum(1 for c in idle[-100:] if c.closed is None))
    if now() >= tick:
        tick += 1.0
        live = [c for c in trick if c.closed is None]
        for c in live: c.trickle()
        for _ in range(600 - len(live)):  # reopen the closed ones
            c = connect("127.0.0.1", batch)
            if c: c.trickle(); trick.append(c)
        batch += 1
end = now()
# the first batch's connections that the server kept (not closed at once by the per-address cap)
b0 = [c for c in trick if c.batch == 0 and (c.closed is None or c.closed - c.opened > 0.5)]
print("batch0_kept=%d" % len(b0))
print("batch0_latest_close=%.2f" % max([(c.closed if c.closed is not None else end) for c in b0] or [99]))
held = [(c.closed if c.closed is not None else end) - c.first for c in trick if c.first is not None]
print("trickle_conns=%d" % len(held))
print("trickle_max_hold=%.2f" % max(held or [99]))
good = 0
for i, p in enumerate(digs):
    try:
        out = p.communicate(timeout=10)[0].decode(errors="replace").strip()
    except subprocess.TimeoutExpired:
        p.kill()
        out = "timeout"
    if out == "127.0.10.1": good += 1
    else: print("dig%d=%s" % (i, out.replace("\n", " | ")))
print("digs=%d/%d" % (good, len(digs)))
for c in trick + idle: c.gone()
PY
timeout 60 python3 "$T/flood.py" "$P" > "$T/flood.out" 2>&1
val() { sed -n "s/^$1=//p" "$T/flood.out"; }
in_range() { python3 -c "import sys; sys.exit(0 if $2 <= float(sys.argv[1]) <= $3 else 1)" "${1:-99}"; }

b0=$(val batch0_open)
in_range "$b0" 1 32
ok $? "per-address cap: of 600 connections from 127.0.0.1, at most 32 stay open (${b0:-?})"
late=$(val batch0_latest_close)
in_range "$late" 1.5 3.5
ok $? "message deadline: the first $(val batch0_kept) tricklers, table not full, closed 2 s after their first byte (last at ${late:-?} s)"
hold=$(val trickle_max_hold)
in_range "$hold" 0 3.5
ok $? "no trickler held its slot over 3.5 s after its first byte (max ${hold:-?} s, $(val trickle_conns) connections)"
is "$(val idle_newest_open)" 100 "full table: the newest 100 of $(val idle_opened) idle connections stay open (the oldest idle make room)"
is "$(val digs)" 12/12 "legitimate TCP queries answered during the floods"
running "$pid_dns"; ok $? "cdn-dns still running"
is "$(q)" 127.0.10.1 "a TCP query is answered after the flood"
[ "$_tap_failed" -eq 0 ] || sed 's/^/# flood: /' "$T/flood.out"
