#!/bin/bash
# measure-hold.sh: one `ptbench load` process holding N obfs4 tunnels (default 15,000)
# against ptreactor bridges on 127.0.0.1, with the figures written to $JSON.
#
#	go build -o bin/ptreactor ./cmd/ptreactor && go build -o bin/ptbench ./cmd/ptbench
#	N=15000 bench/loadgen/measure-hold.sh
#
# Every process is held to the machine's hard RLIMIT_NOFILE (20,000 on the CI machines, where
# even root may not raise it: no CAP_SYS_RESOURCE). A bridge needs two descriptors per tunnel
# and sheds above 45 % of its limit (8,971 tunnels at 20,000), so with N above that the
# tunnels are spread over two ptreactor bridge processes sharing one obfs4 identity (the
# second starts from a copy of the first one's obfs4_state.json), as bridge instances behind
# a TCP balancer do; each has its own ORPort stand-in, a small Python program that accepts
# and holds connections. The ports are below the ephemeral range (32768-60999), where a busy
# machine may already use them.
set -u
N=${N:-15000}
PTREACTOR=${PTREACTOR:-bin/ptreactor}
PTBENCH=${PTBENCH:-bin/ptbench}
JSON=${JSON:-load-hold.jsonl}
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
		"$PTREACTOR" </dev/null >"$1.out" 2>&1 &
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

holder 21101
holder 21111
bridge "$W/b1" 21100 21101
mkdir -p "$W/b2"
cp "$W/b1/obfs4_state.json" "$W/b2/"
bridge "$W/b2" 21110 21111
ARGS=$(grep "^Bridge obfs4" "$W/b1/obfs4_bridgeline.txt" | cut -d' ' -f6-)
echo "descriptors per process: soft $(ulimit -n), hard $(ulimit -Hn)"
"$PTBENCH" load -bridge "obfs4 127.0.0.1:21100 $ARGS" -bridge "obfs4 127.0.0.1:21110 $ARGS" \
	-conns "$N" -until-held -duration 10m -json "$JSON"
