# lib.sh: what the measure-*.sh scripts share; sourced, after $PTREACTOR is set. It makes
# the work directory $W and the pids array, which the stand-ins below append to, and at
# exit kills them and removes $W. bridge takes extra ptreactor flags after its three
# arguments.

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
	# Wait until it listens: a bridge dialing it earlier would count refusals as closed tunnels.
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
		sleep 0.05
	done
	echo "ORPort stand-in on port $1 did not start" >&2
	exit 1
}

# bridge STATEDIR PORT ORPORT [FLAGS...]: ptreactor launched as tor launches a server PT (without
# TOR_PT_EXIT_ON_STDIN_CLOSE, so stdin may be /dev/null).
bridge() {
	mkdir -p "$1"
	env -i PATH="$PATH" TOR_PT_MANAGED_TRANSPORT_VER=1 TOR_PT_STATE_LOCATION="$1" \
		TOR_PT_SERVER_TRANSPORTS=obfs4 TOR_PT_SERVER_BINDADDR=obfs4-127.0.0.1:$2 \
		TOR_PT_ORPORT=127.0.0.1:$3 TOR_PT_EXTENDED_SERVER_PORT= \
		"$PTREACTOR" "${@:4}" </dev/null >"$1.out" 2>&1 &
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

