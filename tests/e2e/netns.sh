# tests/e2e/netns.sh: two network namespaces joined by a veth pair, and faults on the link between them (source after tests/lib.sh).
#
# Namespace A (the agent's) has $ADDR_A on $VETH_A, namespace B (the
# broker's) has $ADDR_B on $VETH_B; nothing else is connected, so no packet
# leaves the machine. Faults act on A's end of the link, both directions:
# netem where the kernel has it, otherwise nftables (loss); a partition is
# always an nftables drop-all. Latency is netem's delay, or where there is no
# netem, tests/kafka/delay_proxy in front of the forwarded ports in B, which
# holds each chunk of bytes for the delay in each direction while it is on.

NS_A=pipit-nf$$-a
NS_B=pipit-nf$$-b
VETH_A=pnf$$a
VETH_B=pnf$$b
ADDR_A=198.18.0.1                       # RFC 2544 benchmark range, inside the pair only
ADDR_B=198.18.0.2
NETNS_MADE=
HAVE_NETEM=
NETNS_DELAY_MS=100 NETNS_JITTER_MS=20   # fault_latency: added each way
DELAY_PROXY="$top_builddir/tests/kafka/delay_proxy"
DELAY_PROXY_PID=
DELAY_ON=                               # 1 while fault_latency is in force
LATENCY_BY=                             # "netem" or "delay proxy" after netns_forward

in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

# netns_skip REASON: the whole test is skipped (TAP plan 1..0).
netns_skip() { echo "1..0 # SKIP $1"; exit 0; }

# netns_setup: make the namespaces and the link, or skip the test when this
# machine cannot (not root, no CAP_NET_ADMIN, no iproute2 or nft). Sets
# HAVE_NETEM when the netem qdisc works.
netns_setup() {
    local err="$T/netns.err"
    [ "$(id -u)" -eq 0 ] || netns_skip "network namespaces need root (CAP_NET_ADMIN)"
    command -v ip >/dev/null 2>&1 || netns_skip "ip (iproute2) is not installed"
    command -v tc >/dev/null 2>&1 || netns_skip "tc (iproute2) is not installed"
    command -v nft >/dev/null 2>&1 ||
        netns_skip "nft is not installed (contrib/install-deps.sh --test)"
    NETNS_MADE="$NS_A $NS_B"            # (a failed add may leave its name behind)
    ip netns add "$NS_A" 2>"$err" && ip netns add "$NS_B" 2>"$err" ||
        netns_skip "cannot create a network namespace: $(head -n 1 "$err")"
    ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B" 2>"$err" ||
        netns_skip "cannot create a veth pair between namespaces: $(head -n 1 "$err")"
    in_a ip addr add "$ADDR_A/30" dev "$VETH_A" && in_b ip addr add "$ADDR_B/30" dev "$VETH_B" &&
        in_a ip link set lo up && in_b ip link set lo up &&
        in_a ip link set "$VETH_A" up && in_b ip link set "$VETH_B" up || return 1
    # Fault chains, empty until a fault is set; before conntrack on the way
    # in, after NAT on the way out.
    in_a nft -f - <<NFT || return 1
table inet pipit_faults {
    chain rx { type filter hook prerouting priority -300; }
    chain tx { type filter hook postrouting priority 300; }
}
NFT
    if in_a tc qdisc add dev "$VETH_A" root netem delay 1ms 2>/dev/null; then
        in_a tc qdisc del dev "$VETH_A" root
        HAVE_NETEM=1
    fi
}

# netns_forward PORT...: carry loopback PORTs of namespace A to namespace B
# over the veth pair. librdkafka's mock cluster listens on 127.0.0.1 only
# and advertises 127.0.0.1:PORT, so the agent dials 127.0.0.1:PORT in A:
# that is rewritten to $ADDR_B (source $ADDR_A), and in B back to 127.0.0.1.
# route_localnet lets loopback addresses be routed through the veth.
# Without netem, B does not rewrite: tests/kafka/delay_proxy listens on
# $ADDR_B:PORT there and connects to 127.0.0.1:PORT, so every connection of
# the agent to a broker passes it (delay off until fault_latency).
netns_forward() {
    local ports p routes=
    ports=$(echo "$*" | tr ' ' ',')
    in_a sh -c "echo 1 >/proc/sys/net/ipv4/conf/$VETH_A/route_localnet" &&
        in_b sh -c "echo 1 >/proc/sys/net/ipv4/conf/$VETH_B/route_localnet" || return 1
    in_a nft -f - <<NFT || return 1
table ip pipit_nat {
    chain out { type nat hook output priority -100; ip daddr 127.0.0.1 tcp dport { $ports } dnat to $ADDR_B; }
    chain post { type nat hook postrouting priority 100; oifname "$VETH_A" ip saddr 127.0.0.1 snat to $ADDR_A; }
}
NFT
    if [ -z "$HAVE_NETEM" ]; then
        for p in "$@"; do routes="$routes $ADDR_B:$p=127.0.0.1:$p"; done
        # ip netns exec itself (not in_b, a function: a subshell) so that
        # $! is the proxy's pid, the one its signals must reach.
        ip netns exec "$NS_B" "$DELAY_PROXY" -d "$NETNS_DELAY_MS" -j "$NETNS_JITTER_MS" $routes \
            >"$T/delay_proxy.out" 2>"$T/delay_proxy.err" &
        DELAY_PROXY_PID=$!
        LATENCY_BY="delay proxy"
        wait_for 10 grep -q '^listening' "$T/delay_proxy.out" || {
            sed 's/^/#   delay_proxy: /' "$T/delay_proxy.err"; return 1; }
        return 0
    fi
    LATENCY_BY=netem
    in_b nft -f - <<NFT
table ip pipit_nat {
    chain pre { type nat hook prerouting priority -100; iifname "$VETH_B" ip daddr $ADDR_B tcp dport { $ports } dnat to 127.0.0.1; }
}
NFT
}

# delay_proxy_switch on|off: turn the proxy's delay on or off and wait until
# it says so on stderr (a no-op without a proxy).
delay_proxy_switch() {
    local n
    [ -n "$DELAY_PROXY_PID" ] || return 0
    n=$(grep -c "delay $1:" "$T/delay_proxy.err")
    if [ "$1" = on ]; then kill -USR1 "$DELAY_PROXY_PID"; else kill -USR2 "$DELAY_PROXY_PID"; fi || return 1
    proxy_switched() { [ "$(grep -c "delay $1:" "$T/delay_proxy.err")" -gt "$2" ]; }
    wait_for 10 proxy_switched "$1" "$n"
}

# delay_proxy_stop: stop the proxy (SIGTERM), show its counters; 0 when it
# exited 0 or there was none.
delay_proxy_stop() {
    local rc
    [ -n "$DELAY_PROXY_PID" ] || return 0
    kill -TERM "$DELAY_PROXY_PID" 2>/dev/null
    wait "$DELAY_PROXY_PID"; rc=$?
    DELAY_PROXY_PID=
    grep '^delay_proxy: stopped' "$T/delay_proxy.err" | sed 's/^/# /'
    [ "$rc" -eq 0 ] || sed 's/^/#   /' "$T/delay_proxy.err"
    return "$rc"
}

# fault_clear: the link works again (no qdisc, no drop rule, no delay).
fault_clear() {
    in_a tc qdisc del dev "$VETH_A" root 2>/dev/null
    in_b tc qdisc del dev "$VETH_B" root 2>/dev/null
    if [ -n "$DELAY_PROXY_PID" ] && [ "$DELAY_ON" = 1 ]; then
        delay_proxy_switch off || return 1
    fi
    DELAY_ON=
    in_a nft flush chain inet pipit_faults rx && in_a nft flush chain inet pipit_faults tx
}

# fault_nft RULE...: drop what RULE matches, both ways, on A's end.
fault_nft() {
    in_a nft add rule inet pipit_faults rx iifname "$VETH_A" "$@" drop &&
        in_a nft add rule inet pipit_faults tx oifname "$VETH_A" "$@" drop
}

# fault_netem ARGS...: a netem qdisc on both ends (each shapes what it sends).
fault_netem() {
    in_a tc qdisc replace dev "$VETH_A" root netem "$@" &&
        in_b tc qdisc replace dev "$VETH_B" root netem "$@"
}

# fault_loss PERCENT: each packet is lost with this probability, each way.
fault_loss() {
    if [ -n "$HAVE_NETEM" ]; then fault_netem loss "$1%"
    else fault_nft numgen random mod 100 "<" "$1"
    fi
}

# fault_latency: $NETNS_DELAY_MS ms +- $NETNS_JITTER_MS ms added each way
# (netem on both ends, or the delay proxy in B).
fault_latency() {
    DELAY_ON=1
    if [ -n "$HAVE_NETEM" ]; then fault_netem delay "${NETNS_DELAY_MS}ms" "${NETNS_JITTER_MS}ms"
    else delay_proxy_switch on
    fi
}

# fault_partition: every packet on the link is dropped, silently (no reset,
# no unreachable: what a peer behind a failed switch sees).
fault_partition() { fault_nft; }

# netns_cleanup: kill what still runs in the namespaces, then delete them
# (their veth ends go with them).
netns_cleanup() {
    local ns pids
    [ -n "$DELAY_PROXY_PID" ] && kill -TERM "$DELAY_PROXY_PID" 2>/dev/null
    for ns in $NETNS_MADE; do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    NETNS_MADE=
}
