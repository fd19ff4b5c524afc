#!/usr/bin/env bash
# cdn-dns protocol behaviour against the real server with kdig, dig and raw packets (python3):
# flags, case, compression, NXDOMAIN/NODATA + SOA, REFUSED, FORMERR cases, NOTIMP, BADVERS,
# TC then TCP retry, ANY, AXFR, ECS scope, TCP pipelining, amplification guard, -t errors.
. "$top_srcdir/tests/lib.sh"
plan 43

DNS=$(bin cdn-dns)
P=$(free_port)
A=$(free_port)
sed -e "s/127.0.0.1:5399/127.0.0.1:$P/" -e "s/127.0.0.1:5398/127.0.0.1:$A/" \
    -e 's|health: http://[^ ]*|health: ~|' \
    "$top_srcdir/dns/examples/bench.yaml" > "$T/dns.yaml"
printf 'tcp_idle_timeout: 700ms\ntcp_max_connections: 3\n' >> "$T/dns.yaml"
start dns "$DNS" -c "$T/dns.yaml" -p "$T/dns.pid"
wait_port 127.0.0.1 "$P" || bail "cdn-dns did not start"

K="kdig @127.0.0.1 -p $P +time=2 +retry=0"
D="dig @127.0.0.1 -p $P +time=2 +tries=1"

# raw QUERY-HEX [tcp] -> response as hex on stdout ("" if no answer within 1 s)
raw() {
    python3 - "$P" "$1" "${2:-udp}" <<'PY'
import socket, sys, struct
port, hexq, proto = int(sys.argv[1]), bytes.fromhex(sys.argv[2]), sys.argv[3]
try:
    if proto == "tcp":
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(struct.pack(">H", len(hexq)) + hexq)
        n = struct.unpack(">H", s.recv(2, socket.MSG_WAITALL))[0]
        print(s.recv(n, socket.MSG_WAITALL).hex())
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
        s.sendto(hexq, ("127.0.0.1", port)); print(s.recv(65535).hex())
except Exception:
    print("")
PY
}
rcode() { [ -n "$1" ] && echo $(( 0x${1:7:1} )); }   # low 4 bits of byte 3
# question www.shop.test A IN
QWWW="037777770473686f70047465737400"
QA="00010001"

# --- answers and flags
out=$($K www.shop.test A)
like "$out" "www\.shop\.test\.[[:space:]]+300[[:space:]]+IN[[:space:]]+A[[:space:]]+127\.0\.10\.1" "static A with its TTL"
like "$out" "Flags: qr aa rd;" "AA set, RA clear"
like "$($K +norecurse www.shop.test A)" "Flags: qr aa;" "RD not asked: not set"
out=$($D WwW.ShOp.TeSt A)
like "$out" "WwW\.ShOp\.TeSt\.[[:space:]]+300[[:space:]]+IN[[:space:]]+A" "qname case preserved in the answer"
like "$($K +noedns www.shop.test A)" "Received 47 B" "A answer is 47 bytes: owner compressed to a pointer"
like "$($K +noedns shop.test NS)" "Received 45 B" "NS answer compressed (owner and target)"
out=$($K nope.shop.test A)
like "$out" "status: NXDOMAIN" "NXDOMAIN"
like "$out" "shop\.test\.[[:space:]]+30[[:space:]]+IN[[:space:]]+SOA[[:space:]]+ns1" "NXDOMAIN carries the SOA, TTL min(SOA TTL, minimum)"
out=$($K www.shop.test MX)
like "$out" "status: NOERROR" "NODATA is NOERROR"
like "$out" "ANSWER: 0.*AUTHORITY: 1" "NODATA: no answer, SOA in authority"
like "$($K www.example.org A)" "status: REFUSED" "REFUSED outside our zones"
unlike "$($K www.example.org A)" "Flags: qr aa" "REFUSED is not authoritative"
out=$($D shop.test ANY)
like "$out" "ANSWER: 1," "ANY: one RRset (RFC 8482)"
like "$($K shop.test AXFR 2>&1)" "REFUSED" "AXFR refused"
like "$($K +notcp shop.test IXFR=1 2>&1)" "REFUSED|NOTIMP" "IXFR refused"

# --- truncation and TCP
out=$($D +notcp +ignore +noedns big.shop.test TXT)
like "$out" "flags: qr aa tc" "big TXT over 512-byte UDP: TC=1"
like "$out" "ANSWER: 0," "truncated answer is empty"
out=$($D +noedns big.shop.test TXT)
like "$out" "ANSWER: 30," "dig retries over TCP and gets all 30 TXT"
out=$($K +tcp +bufsize=4096 big.shop.test TXT)
like "$out" "ANSWER: 30" "kdig over TCP: 30 TXT"
out=$($D +notcp +ignore +bufsize=4096 big.shop.test TXT)
like "$out" "flags: qr aa tc" "EDNS 4096 is capped (1232 and the amplification guard): still TC"
like "$out" "udp: 1232" "the OPT advertises our size"
h=$(raw "beef03000001000000000000${QWWW}${QA}")
like "$h" "^beef85000001000100000000" "a query with TC set is answered normally (AA, no TC, one answer)"

# --- malformed queries (raw bytes)
h=$(raw "beef010000010000000000000377777704736806")
is "$(rcode "$h")" 1 "question cut short: FORMERR"
h=$(raw "beef01000002000000000000${QWWW}${QA}${QWWW}${QA}")
is "$(rcode "$h")" 1 "QDCOUNT 2: FORMERR"
h=$(raw "beef01000000000000000000")
is "$(rcode "$h")" 1 "QDCOUNT 0: FORMERR"
OPT="0000291000000000000000"
h=$(raw "beef01000001000000000002${QWWW}${QA}${OPT}${OPT}")
is "$(rcode "$h")" 1 "two OPT records: FORMERR"
ecs() { echo "000029100000000000$(printf '%04x' $(( 4 + ${#1} / 2 )))0008$(printf '%04x' $(( ${#1} / 2 )))$1"; }
h=$(raw "beef01000001000000000001${QWWW}${QA}$(ecs 000118007f0001)")
is "$(rcode "$h")" 0 "a good ECS option is accepted"
h=$(raw "beef01000001000000000001${QWWW}${QA}$(ecs 000118007f000101)")
is "$(rcode "$h")" 1 "ECS address longer than its prefix: FORMERR"
h=$(raw "beef01000001000000000001${QWWW}${QA}$(ecs 000117007f0003)")
is "$(rcode "$h")" 1 "ECS host bits beyond the prefix: FORMERR"
h=$(raw "beef01000001000000000001${QWWW}${QA}$(ecs 000121007f000100)")
is "$(rcode "$h")" 1 "ECS IPv4 prefix 33: FORMERR"
h=$(raw "beef01000001000000000001${QWWW}${QA}$(ecs 000518007f0001)")
is "$(rcode "$h")" 1 "ECS unknown family: FORMERR"
h=$(raw "beef01000001000000000001${QWWW}${QA}$(ecs 000118107f0001)")
is "$(rcode "$h")" 1 "ECS non-zero scope in a query: FORMERR"
h=$(raw "beef11000001000000000000${QWWW}${QA}")
is "$(rcode "$h")" 4 "opcode 2 (STATUS): NOTIMP"
out=$($D +edns=1 +noednsnegotiation www.shop.test A)
like "$out" "status: BADVERS" "EDNS version 1: BADVERS"

# --- ECS scope
out=$($K +subnet=127.0.2.0/24 img.shop.test A)
like "$out" "CLIENT-SUBNET: 127\.0\.2\.0/24/24" "CDN name: ECS scope = matched prefix (24)"
like "$out" "img\.shop\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+127\.0\.20\.2" "ECS us subnet -> us edge"
out=$($K +subnet=127.0.2.0/24 www.shop.test A)
like "$out" "CLIENT-SUBNET: 127\.0\.2\.0/24/0" "static name: ECS scope 0"

# --- TCP pipelining: three queries in one write, three answers back in order
out=$(python3 - "$P" <<'PY'
import socket, struct, sys
def q(i, name):
    b = struct.pack(">HHHHHH", i, 0, 1, 0, 0, 0)
    for l in name.split("."): b += bytes([len(l)]) + l.encode()
    return b + b"\0\0\1\0\1"
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.sendall(b"".join(struct.pack(">H", len(x)) + x for x in (q(1, "www.shop.test"), q(2, "ns1.shop.test"), q(3, "nope.shop.test"))))
ids = []
for _ in range(3):
    n = struct.unpack(">H", s.recv(2, socket.MSG_WAITALL))[0]
    r = s.recv(n, socket.MSG_WAITALL); ids.append("%d:%d" % (struct.unpack(">H", r[:2])[0], r[3] & 15))
print(" ".join(ids))
PY
)
is "$out" "1:0 2:0 3:3" "TCP: pipelined queries on one connection, answered in order"

# --- amplification guard (the TC cases above also hit it): small answers are not affected
out=$($D +notcp +ignore +bufsize=1232 ns1.shop.test A)
like "$out" "ANSWER: 1," "small answers pass the amplification guard"

# --- TCP limits: an idle connection is closed after tcp_idle_timeout; beyond tcp_max_connections
#     the oldest idle connection is closed for the new one (tests/security/dns_tcp_flood.sh has the rest)
out=$(python3 - "$P" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def closed_within(s, secs):
    s.settimeout(secs)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
a = socket.create_connection(("127.0.0.1", port)); t0 = time.time()
r1 = "idle-open" if not closed_within(a, 0.3) else "closed-early"
r2 = "idle-closed" if closed_within(a, 2.0) else "still-open"
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
time.sleep(0.1)
extra = socket.create_connection(("127.0.0.1", port))
# all within ~0.4 s of opening `held`, well inside the 700 ms idle timeout
r4 = "oldest-closed" if closed_within(held[0], 0.2) else "oldest-open"
r5 = "others-open" if not any(closed_within(h, 0.05) for h in held[1:]) else "other-closed"
r3 = "extra-open" if not closed_within(extra, 0.1) else "extra-closed"
print(r1, r2, r3, r4, r5)
PY
)
is "$out" "idle-open idle-closed extra-open oldest-closed others-open" "TCP: idle timeout closes; a full table closes its oldest idle connection"

# --- pid file
is "$(cat "$T/dns.pid" 2>/dev/null)" "$pid_dns" "pid file written"

# --- config test mode
printf 'listen: 127.0.0.1:1\nzones:\n  - name: x.test\n    records:\n      - "www A 1.2.3"\n' > "$T/bad.yaml"
out=$("$DNS" -t -c "$T/bad.yaml" 2>&1); rc=$?
like "$out" "bad.yaml:5:9: .*IPv4" "-t reports file:line:col of a bad record"
is "$rc" 1 "-t exits 1 on a bad config"
