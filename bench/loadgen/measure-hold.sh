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
. "$(dirname "$0")/lib.sh"

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
