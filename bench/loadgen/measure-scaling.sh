#!/bin/bash
# measure-scaling.sh: set-up latency and held tunnels with `ptbench load` against one
# ptreactor bridge, then against HAProxy (send-proxy-v2, round robin) in front of three
# ptreactor bridges sharing one identity, on 127.0.0.1. The figures of doc/scaling.md.
#
#	go build -o bin/ptreactor ./cmd/ptreactor && go build -o bin/ptbench ./cmd/ptbench
#	bench/loadgen/measure-scaling.sh            # N=3000 tunnels at RATE=500/s
#
# HAProxy (maxconn 9000, which keeps its descriptors under a hard limit of 20,000) connects
# to the bridges from 127.0.0.2, the range they take PROXY headers from.
# Every instance shares the machine's cores: on one box, three instances show what the
# balancer costs, not more capacity.
set -u
N=${N:-3000}
RATE=${RATE:-500}
PTREACTOR=${PTREACTOR:-bin/ptreactor}
PTBENCH=${PTBENCH:-bin/ptbench}
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
. "$(dirname "$0")/lib.sh"

load() {
	"$PTBENCH" load -bridge "obfs4 $1 $ARGS" -conns "$N" -rate "$RATE" -until-held -duration 5m |
		grep -E "handshakes ok|tunnels held|set-up latency|errors|load process"
}

holder 21201
bridge "$W/b1" 21200 21201
ARGS=$(grep "^Bridge obfs4" "$W/b1/obfs4_bridgeline.txt" | cut -d' ' -f6-)
echo "== one bridge, $N tunnels at $RATE/s"
load 127.0.0.1:21200
kill "${pids[@]}"; wait 2>/dev/null; pids=()

for i in 1 2 3; do
	holder 2121$i
	mkdir -p "$W/c$i"
	cp "$W/b1/obfs4_state.json" "$W/c$i/"
	bridge "$W/c$i" 2122$i 2121$i -proxy-protocol 127.0.0.2/32
done
cat >"$W/haproxy.cfg" <<CFG
global
    maxconn 9000
defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m
frontend obfs4
    bind 127.0.0.1:21230
    default_backend bridges
backend bridges
    balance roundrobin
    server c1 127.0.0.1:21221 send-proxy-v2 source 127.0.0.2
    server c2 127.0.0.1:21222 send-proxy-v2 source 127.0.0.2
    server c3 127.0.0.1:21223 send-proxy-v2 source 127.0.0.2
CFG
"$HAPROXY" -db -f "$W/haproxy.cfg" &
pids+=($!)
sleep 1
echo "== HAProxy and three bridges of one identity, $N tunnels at $RATE/s"
load 127.0.0.1:21230
