# ptreactor — the two commands a newcomer needs are `make demo` and `make test`.
GO       ?= go
BIN      := bin/ptreactor
MAN      := doc/ptreactor.1
PKGS     := ./...
FUZZTIME ?= 10s
PREFIX   ?= /usr/local
# VERSION is what -version, the STATUS version line and the log report: the checkout's tag
# (git describe), else the module version the go command records, else "devel".
VERSION  ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null)

.PHONY: all build install ptbench demo test unit race soak-ci soak-hour cross deps lint doc-check fuzz fuzz-smoke bench bench-quick clean

all: build

build:
	$(GO) build -trimpath $(if $(VERSION),-ldflags "-X main.version=$(VERSION)") -o $(BIN) ./cmd/ptreactor

# install: the binary and its man page under $(DESTDIR)$(PREFIX).
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/ptreactor
	install -m 0644 $(MAN) $(DESTDIR)$(PREFIX)/share/man/man1/ptreactor.1

ptbench:
	$(GO) build -trimpath -o bin/ptbench ./cmd/ptbench

# demo: a server and a client ptreactor, launched as tor launches them, moving bytes.
demo: build
	$(GO) run ./bench/cmd/demo -bin $(BIN)

# test: everything CI runs: install the real peers, lint, all tests, the data path's tests
# under the race detector, a 3-minute soak with faults, every fuzz target briefly.
test: deps lint doc-check cross unit race soak-ci fuzz-smoke

unit:
	$(GO) test -count=1 -timeout 45m $(PKGS)

# race: the packages that share state between goroutines (the reactor's loops and pools, the
# lifecycle's signals and stdin watch, the codecs they drive) under the race detector; tests
# that bound memory skip those bounds there (reactor/race_test.go).
RACE_PKGS := ./reactor/... ./lifecycle/... ./codec/...
race:
	$(GO) test -race -count=1 -timeout 30m $(RACE_PKGS)

# soak-ci: a 3-minute soak of a ptreactor pair through the Extended ORPort stand-in, with its
# faults (ExtORPort restarts, a lowered descriptor limit) and the SIGINT drain at its end;
# any failed check fails it. The report lands in $(SOAK_OUT).
# soak-hour: the same for an hour (SOAK_PAIRS adds obfs4proxy for comparison, if wanted).
# SOAK_METRICS names the pairs whose goroutines are read from ptreactor's -metrics.
SOAK_OUT   ?= ptbench-soak
SOAK_PAIRS ?= --pair ptreactor=$(BIN):$(BIN)
SOAK_METRICS ?= --metrics ptreactor
SOAK        = bin/ptbench lab --size standard --scenario soak --extorport $(SOAK_PAIRS) $(SOAK_METRICS) --out $(SOAK_OUT)
soak-ci: deps build ptbench
	@$(SOAK) --duration 3m; rc=$$?; \
	sed -n '/^## Failures/,$$p' $(SOAK_OUT)/report.md 2>/dev/null; exit $$rc

soak-hour: deps build ptbench
	@$(SOAK) --duration 1h; rc=$$?; \
	sed -n '/^## soak/,$$p' $(SOAK_OUT)/report.md 2>/dev/null; exit $$rc

# The tests drive the real peers (tor, obfs4proxy, haproxy); a missing one is a failure, so
# install them here, with what doc-check needs to render the man page (man-db's man,
# groff-base's troff) and systemd's systemd-analyze, which checks the shipped unit file.
# haproxy lives in /usr/sbin, which a user's PATH may lack.
HAVE_HAPROXY := command -v haproxy >/dev/null || test -x /usr/sbin/haproxy
deps:
	@if ! command -v tor >/dev/null || ! command -v obfs4proxy >/dev/null || \
	    ! command -v man >/dev/null || ! command -v troff >/dev/null || ! { $(HAVE_HAPROXY); } || \
	    ! command -v systemd-analyze >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq tor obfs4proxy haproxy man-db groff-base systemd >/dev/null; \
	fi
	@command -v tor >/dev/null && command -v obfs4proxy >/dev/null && { $(HAVE_HAPROXY); } && \
		command -v man >/dev/null && command -v troff >/dev/null && command -v systemd-analyze >/dev/null

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go') | grep -v '/_asm/' ); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

# A host binary of staticcheck, run with another GOOS/GOARCH by cross.
bin/staticcheck:
	GOBIN=$(CURDIR)/bin $(GO) install $(STATICCHECK)

# cross: the shipped packages build for every platform ptreactor runs on (and for Windows,
# where it builds so that tor gets its refusal as an ENV-ERROR), and are vetted there: the
# whole tree for Linux, and for the others the code without the tests, whose harness
# (network namespaces, Pdeathsig) is Linux-only; staticcheck stands in for vet there, less
# U1000, since a helper only tests use looks unused without them. The cipher also passes its tests in its
# pure-Go form, and go.mod is tidy.
SHIPPED      := ./cmd/ptreactor ./codec/... ./lifecycle/... ./reactor/...
CROSS_LINUX  := linux/amd64 linux/arm64
CROSS_OTHER  := darwin/arm64 freebsd/amd64 openbsd/amd64 windows/amd64

cross: bin/staticcheck
	@set -e; for p in $(CROSS_LINUX); do \
		echo "cross $$p"; \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build $(SHIPPED); \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) vet $(PKGS); \
	done
	@set -e; for p in $(CROSS_OTHER); do \
		echo "cross $$p"; \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build $(SHIPPED); \
		case $$p in windows/*) ;; *) GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -o /dev/null ./cmd/ptbench;; esac; \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) vet ./codec/...; \
		GOOS=$${p%/*} GOARCH=$${p#*/} bin/staticcheck -tests=false -checks inherit,-U1000 $(SHIPPED); \
	done
	$(GO) test -count=1 -timeout 5m -tags purego ./codec/cipher/
	$(GO) mod tidy -diff

# doc-check: the man page renders without a single warning (troff's or man's).
doc-check:
	@out=$$(MANWIDTH=80 man --warnings -l $(MAN) 2>&1 >/dev/null); \
		if [ -n "$$out" ]; then echo "$(MAN):"; echo "$$out"; exit 1; fi

# fuzz-smoke runs every fuzz target of the tree for a few seconds each (CI does this).
fuzz-smoke:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '/_asm/'); do \
		dir=$$(dirname $$f); \
		for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/^func //'); do \
			echo "fuzz $$dir $$t"; \
			$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$${FUZZ_SMOKE_TIME:-3s} $$dir >/dev/null || \
			{ echo "  retrying $$t (a crasher, if any, is now in the seed corpus and fails again)"; \
			  $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$${FUZZ_SMOKE_TIME:-3s} $$dir || exit 1; }; \
		done; \
	done

# fuzz: the same targets, longer (FUZZTIME each).
fuzz:
	$(MAKE) fuzz-smoke FUZZ_SMOKE_TIME=$(FUZZTIME)

# bench: the standard comparison, ptreactor against obfs4proxy (under 10 minutes on 2 cores);
# the report, the figures and the charts land in bench/ and the latest run is committed.
PAIRS := --pair ptreactor=$(BIN):$(BIN) --pair obfs4proxy=obfs4proxy:obfs4proxy
bench: deps build ptbench
	@out=$$(mktemp -d); bin/ptbench lab --size standard $(PAIRS) --out $$out; rc=$$?; \
	if [ -f $$out/report.md ]; then \
		cp $$out/report.md bench/REPORT.md && cp $$out/results.jsonl bench/results.jsonl && \
		rm -rf bench/charts && cp -r $$out/charts bench/charts && \
		echo "wrote bench/REPORT.md, bench/results.jsonl, bench/charts/"; \
	fi; rm -rf $$out; exit $$rc

# bench-quick: the same comparison at the quick size (under a minute), into $(QUICK_OUT).
QUICK_OUT ?= ptbench-quick
bench-quick: deps build ptbench
	bin/ptbench lab --size quick $(PAIRS) --out $(QUICK_OUT)

clean:
	rm -rf bin
