#!/usr/bin/env bash
# cdn-wanrelay in namespaces: two hosts on one L2 segment cut by the relay's namespace.
#   [A a0 198.18.250.1] == veth == [relay: ra <-> rb] == veth == [B b0 198.18.250.2]
# Checks: ARP/UDP/TCP pass with addresses unchanged; the UDP round trip is at least twice the
# one-way delay (a lower bound, not a timing window; the measured values are reported); a 4 MB
# HTTP body crosses intact with TSO/checksum offload left on (the virtio header path); counters;
# the loss changed at run time through --control and SIGHUP (issue 19, wan-loss): with "loss 1"
# no probe crosses and drop_loss counts them, a file that does not parse changes nothing, with the
# file gone every probe crosses again, the same process throughout; the namespaces are gone
# afterwards. Skips without root or `ip netns`.
. "$top_srcdir/tests/lib.sh"
plan 15
if [ "$(id -u)" != 0 ] || ! ip netns list >/dev/null 2>&1; then
    for i in $(seq 1 15); do skip "needs root and ip netns"; done; exit 0
fi
relay=$(bin cdn-wanrelay)
P="cdnt$$"
cleanup_ns() { for n in a r b; do ip netns del "$P-$n" 2>/dev/null; done; }
trap 'rc=$?; cleanup_ns; (exit $rc); _cleanup' EXIT
for n in a r b; do ip netns add "$P-$n" && ip -n "$P-$n" link set lo up || bail "netns add"; done
ip link add a0 netns "$P-a" type veth peer name ra netns "$P-r" || bail "veth"
ip link add b0 netns "$P-b" type veth peer name rb netns "$P-r" || bail "veth"
ip -n "$P-a" addr add 198.18.250.1/24 dev a0; ip -n "$P-a" link set a0 up
ip -n "$P-b" addr add 198.18.250.2/24 dev b0; ip -n "$P-b" link set b0 up
ip -n "$P-r" link set ra up; ip -n "$P-r" link set rb up

start relay ip netns exec "$P-r" "$relay" -d 20ms -s "$T/stats.json" --control "$T/ctl" ra rb
sleep 0.3
running "$pid_relay"; ok $? "relay runs between ra and rb"

# UDP echo in B; 10 probes from A, each timed.
cat >"$T/echo.py" <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("198.18.250.2", 7007))
while True:
    d, a = s.recvfrom(2048); s.sendto(d, a)
PY
cat >"$T/probe.py" <<'PY'
import socket, time, statistics
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
rtts = []
for i in range(12):
    t = time.monotonic(); s.sendto(b"probe%d" % i, ("198.18.250.2", 7007))
    try:
        s.recvfrom(2048); rtts.append((time.monotonic() - t) * 1000)
    except socket.timeout:
        pass
    time.sleep(0.05)
rtts = rtts[2:]  # the first ones include ARP
print(len(rtts), "%.2f" % min(rtts) if rtts else 0, "%.2f" % statistics.median(rtts) if rtts else 0,
      "%.2f" % max(rtts) if rtts else 0)
PY
start echo ip netns exec "$P-b" python3 "$T/echo.py"
sleep 0.3
read -r n rmin rmed rmax < <(ip netns exec "$P-a" python3 "$T/probe.py")
is "$n" 10 "all UDP probes answered across the relay"
diag "UDP RTT with 20 ms each way: min $rmin ms, median $rmed ms, max $rmax ms"
awk -v m="$rmin" 'BEGIN { exit !(m >= 40.0) }'; ok $? "round trip >= 2 x 20 ms ($rmin ms)"

# TCP: a 4 MB file over HTTP with offloads on.
mkdir -p "$T/www"; head -c 4194304 /dev/urandom >"$T/www/blob"
start www ip netns exec "$P-b" python3 -m http.server 8088 --bind 198.18.250.2 --directory "$T/www"
ip netns exec "$P-a" bash -c "for i in \$(seq 1 60); do (exec 3<>/dev/tcp/198.18.250.2/8088) 2>/dev/null && exit 0; sleep 0.1; done; exit 1"
out=$(ip netns exec "$P-a" curl -s -m 30 -o "$T/got" -w '%{http_code} %{size_download} %{time_total} %{time_connect}' http://198.18.250.2:8088/blob)
read -r code size ttot tconn <<<"$out"
is "$code $size" "200 4194304" "4 MB over HTTP through the relay"
cmp -s "$T/www/blob" "$T/got"; ok $? "body intact (checksums completed by the receiver)"
diag "4 MB GET: total ${ttot}s, TCP connect ${tconn}s"
awk -v c="$tconn" 'BEGIN { exit !(c >= 0.040) }'; ok $? "TCP handshake took >= 40 ms ($tconn s)"

sleep 1.2  # the stats file is rewritten every second
like "$(cat "$T/stats.json" 2>/dev/null)" '"from":"ra","to":"rb","in_frames":[1-9]' "relay counted frames A->B"

# Run-time loss: --control FILE and SIGHUP, no restart. Counts, not times: N probes with a short
# timeout each, how many came back.
cat >"$T/count.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.3)
n = 0
for i in range(int(sys.argv[1])):
    s.sendto(b"count%d" % i, ("198.18.250.2", 7007))
    try:
        while True:
            d, _ = s.recvfrom(2048)
            if d == b"count%d" % i:
                n += 1; break
    except socket.timeout:
        pass
print(n)
PY
# drop_loss summed over both directions, from the stats file
drops() { python3 -c 'import json,sys; print(sum(d["drop_loss"] for d in json.load(open(sys.argv[1]))))' "$T/stats.json"; }
losses() { python3 -c 'import json,sys; print(" ".join("%g" % d["loss"] for d in json.load(open(sys.argv[1]))))' "$T/stats.json"; }
loss_is() { [ "$(losses)" = "$1" ]; }
drops_at_least() { [ "$(drops)" -ge "$1" ]; }
rpid=$(pgrep -f -- "cdn-wanrelay .*--control $T/ctl" | head -1)
d0=$(drops)
echo "loss 1" >"$T/ctl"; kill -HUP "$rpid"
wait_for 5 loss_is "1 1"
is "$(losses)" "1 1" "loss 1 through --control + SIGHUP: both directions, in the stats at once"
is "$(ip netns exec "$P-a" python3 "$T/count.py" 6)" 0 "loss 1: no probe crosses"
wait_for 5 drops_at_least $((d0 + 6))
d1=$(drops)
ok $([ "$d1" -ge $((d0 + 6)) ]; echo $?) "drop_loss counted the probes ($d0 -> $d1)"
echo "loss 2" >"$T/ctl"; kill -HUP "$rpid"
wait_for 5 grep -q 'ctl:1: expected .*loss unchanged' "$T/relay.log"
is "$(losses)" "1 1" "a control file that does not parse changes nothing (relay says why)"
rm -f "$T/ctl"; kill -HUP "$rpid"
wait_for 5 loss_is "0 0"
is "$(losses)" "0 0" "control file gone: back to --loss (0)"
is "$(ip netns exec "$P-a" python3 "$T/count.py" 6)" 6 "loss 0: every probe crosses"
running "$pid_relay" && [ "$(pgrep -f -- "cdn-wanrelay .*--control $T/ctl" | head -1)" = "$rpid" ]; ok $? "the same relay process throughout"
stop relay
cleanup_ns
left=$(ip netns list | grep -c "^$P-" || true)
is "$left" 0 "no namespace left after teardown"
