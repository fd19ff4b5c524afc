#!/usr/bin/env bash
# cdn-dns udp_steer: cpu with two workers: each worker's UDP thread is bound to its own CPU, and a
# query goes to the worker on the CPU that sent it (a client pinned to CPU 1 wakes only the CPU-1
# thread); a bad udp_steer value is refused with its line. Needs 2 CPUs (skips otherwise).
. "$top_srcdir/tests/lib.sh"
plan 7

DNS=$(bin cdn-dns)
[ "$(nproc)" -ge 2 ] || { skip "needs 2 CPUs"; skip "needs 2 CPUs"; skip "needs 2 CPUs"; skip "needs 2 CPUs"
                          skip "needs 2 CPUs"; skip "needs 2 CPUs"; skip "needs 2 CPUs"; exit 0; }
P=$(free_port)
conf() {
cat <<EOF2
listen: 127.0.0.1:$P
workers: 2
udp_steer: $1
zones:
  - name: shop.test
    soa: "ns1 hostmaster 1 3600 600 86400 30"
    records: ["@ NS ns1", "ns1 A 127.0.0.1", "www 300 A 127.0.10.1"]
EOF2
}
conf fast > "$T/bad.yaml"
like "$("$DNS" -c "$T/bad.yaml" -t 2>&1)" 'bad.yaml:3:.*expected cpu or hash' "udp_steer: fast is refused with its line"
conf cpu > "$T/dns.yaml"
start dns "$DNS" -c "$T/dns.yaml"
wait_port 127.0.0.1 "$P" || bail "cdn-dns did not start"
for _ in $(seq 1 50); do dig +short +time=1 +tries=1 @127.0.0.1 -p "$P" www.shop.test A | grep -q 127.0.10.1 && break; sleep 0.1; done
pid=$pid_dns

# threads bound to one CPU each: the two UDP threads, on CPU 0 and CPU 1
bound=$(for t in /proc/$pid/task/*; do awk '/^Cpus_allowed_list/{print $2}' "$t/status"; done | grep -Ex '[0-9]+' | sort | tr '\n' ' ')
is "$bound" "0 1 " "one UDP thread bound to CPU 0, one to CPU 1"
tid_on() { for t in /proc/$pid/task/*; do [ "$(awk '/^Cpus_allowed_list/{print $2}' "$t/status")" = "$1" ] && basename "$t"; done; }
switches() { awk '/^voluntary_ctxt_switches/{print $2}' "/proc/$pid/task/$1/status"; }
T0=$(tid_on 0); T1=$(tid_on 1)

# 1000 queries one at a time from a client pinned to a CPU: the thread of that CPU wakes for each
ask_from() {  # ask_from CPU -> number of answers
    python3 - "$1" "$P" <<'PY'
import os, socket, struct, sys
os.sched_setaffinity(0, {int(sys.argv[1])})
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
q = b"\3www\4shop\4test\0\0\1\0\1"
n = 0
for i in range(1000):
    s.sendto(struct.pack(">HHHHHH", i, 0, 1, 0, 0, 0) + q, ("127.0.0.1", int(sys.argv[2])))
    try:
        r = s.recv(512)
        n += r[:2] == struct.pack(">H", i)
    except socket.timeout:
        pass
print(n)
PY
}
for cpu in 1 0; do
    a0=$(switches "$T0"); a1=$(switches "$T1")
    is "$(ask_from $cpu)" 1000 "1000 answers to a client on CPU $cpu"
    d0=$(( $(switches "$T0") - a0 )); d1=$(( $(switches "$T1") - a1 ))
    if [ $cpu = 1 ]; then mine=$d1 other=$d0; else mine=$d0 other=$d1; fi
    # the other thread only wakes for its receive timeout (every 200 ms)
    if [ "$mine" -ge 500 ] && [ "$other" -lt 200 ]; then pass "client on CPU $cpu: its CPU's thread answered ($mine wakeups, the other $other)"
    else fail "client on CPU $cpu: wakeups CPU-$cpu thread $mine, the other $other"; fi
done

# the default (hash): the kernel spreads by addresses, no thread is bound
stop dns
conf hash > "$T/dns.yaml"
start dns2 "$DNS" -c "$T/dns.yaml"
wait_port 127.0.0.1 "$P" || bail "cdn-dns did not start again"
bound=$(for t in /proc/$pid_dns2/task/*; do awk '/^Cpus_allowed_list/{print $2}' "$t/status"; done | grep -Ex '[0-9]+' | tr '\n' ' ')
is "$bound" "" "udp_steer: hash binds no thread"
