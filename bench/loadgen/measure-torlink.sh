#!/bin/bash
# measure-torlink.sh: ptbench load -tor-link against a real tor bridge that runs ptreactor,
# both inside a private network namespace that has only loopback (so neither can reach
# anything else), the link handshake going client -> obfs4 -> ptreactor -> ExtORPort -> tor.
#
#	go build -o bin/ptreactor ./cmd/ptreactor && go build -o bin/ptbench ./cmd/ptbench
#	sudo unshare -n bench/loadgen/measure-torlink.sh -conns 1000 -until-held -duration 2m
#
# Arguments are passed on to ptbench load. tor's torrc is the test bridge's: no descriptor
# upload, a dead directory authority, ORPort and ExtORPort on 127.0.0.1.
set -u
PTREACTOR=$(realpath "${PTREACTOR:-bin/ptreactor}")
PTBENCH=${PTBENCH:-bin/ptbench}
ip link set lo up
W=$(mktemp -d)
mkdir -p "$W/data"
cat >"$W/torrc" <<RC
DataDirectory $W/data
Log notice file $W/notice.log
RunAsDaemon 0
AvoidDiskWrites 1
UseDefaultFallbackDirs 0
DirAuthority dead orport=1 no-v2 v3ident=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA 127.0.0.1:2 AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA AAAA
BridgeRelay 1
PublishServerDescriptor 0
AssumeReachable 1
ORPort 127.0.0.1:auto
ExtORPort auto
SocksPort 0
ServerTransportPlugin obfs4 exec $PTREACTOR
ServerTransportListenAddr obfs4 127.0.0.1:21300
RC
tor -f "$W/torrc" --defaults-torrc /dev/null >"$W/tor.out" 2>&1 &
TOR=$!
trap 'kill $TOR; wait; rm -rf "$W"' EXIT
# Ready when tor has registered the transport (ptreactor is up) and written its fingerprint.
for _ in $(seq 600); do
	grep -q "Registered server transport 'obfs4'" "$W/notice.log" 2>/dev/null && [ -s "$W/data/fingerprint" ] && break
	sleep 0.1
done
ARGS=$(grep "^Bridge obfs4" "$W/data/pt_state/obfs4_bridgeline.txt" | cut -d' ' -f6-)
FP=$(cut -d' ' -f2 "$W/data/fingerprint")
"$PTBENCH" load -bridge "obfs4 127.0.0.1:21300 $FP $ARGS" -tor-link "$@"
