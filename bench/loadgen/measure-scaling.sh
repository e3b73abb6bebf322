#!/bin/bash
# measure-scaling.sh: set-up latency and held tunnels with `ptbench load` against one
# ptreactor bridge, then against HAProxy (send-proxy-v2, round robin) in front of three
# ptreactor bridges sharing one identity, on 127.0.0.1. The figures of doc/scaling.md.
#
#	go build -o bin/ptreactor ./cmd/ptreactor && go build -o bin/ptbench ./cmd/ptbench
#	bench/loadgen/measure-scaling.sh            # N=3000 tunnels at RATE=500/s
#
# HAProxy connects to the bridges from 127.0.0.2, the range they take PROXY headers from.
# Every instance shares the machine's cores: on one box, three instances show what the
# balancer costs, not more capacity.
set -u
N=${N:-3000}
RATE=${RATE:-500}
PTREACTOR=${PTREACTOR:-bin/ptreactor}
PTBENCH=${PTBENCH:-bin/ptbench}
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
W=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

# holder PORT: an ORPort stand-in that accepts and holds connections, discarding input.
holder() {
	python3 -c '
import resource, selectors, socket, sys
h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))
sel = selectors.EpollSelector()
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(4096)
ls.setblocking(False)
sel.register(ls, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj is ls:
            try:
                while True:
                    c, _ = ls.accept()
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ)
            except BlockingIOError:
                pass
            continue
        try:
            d = key.fileobj.recv(65536)
        except OSError:
            d = b""
        if not d:
            sel.unregister(key.fileobj)
            key.fileobj.close()
' "$1" &
	pids+=($!)
}

# bridge STATEDIR PORT ORPORT: ptreactor launched as tor launches a server PT (without
# TOR_PT_EXIT_ON_STDIN_CLOSE, so stdin may be /dev/null).
bridge() {
	mkdir -p "$1"
	env -i PATH="$PATH" TOR_PT_MANAGED_TRANSPORT_VER=1 TOR_PT_STATE_LOCATION="$1" \
		TOR_PT_SERVER_TRANSPORTS=obfs4 TOR_PT_SERVER_BINDADDR=obfs4-127.0.0.1:$2 \
		TOR_PT_ORPORT=127.0.0.1:$3 TOR_PT_EXTENDED_SERVER_PORT= \
		"$PTREACTOR" -proxy-protocol 127.0.0.2/32 </dev/null >"$1.out" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		grep -q "SMETHODS DONE" "$1.out" 2>/dev/null && break
		sleep 0.1
	done
	if ! grep -q "^SMETHOD obfs4 " "$1.out"; then
		echo "bridge on port $2 did not start:" >&2
		cat "$1.out" >&2
		exit 1
	fi
}

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
	bridge "$W/c$i" 2122$i 2121$i
done
cat >"$W/haproxy.cfg" <<CFG
global
    maxconn 20000
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
