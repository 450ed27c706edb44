# xvs: userspace L4 load balancer over AF_XDP.
# `make demo` and `make test` work on a fresh Debian machine as root: they
# install what they need (.ci/deps) first.

GO       ?= go
BIN      := bin
export GOFLAGS ?= -buildvcs=false
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0
# xvs's version, stamped into the programs (xvsadm -v, xvsd -version); a
# build without the Makefile falls back on what Go recorded (see
# internal/version).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X github.com/xvs-lb/xvs/internal/version.stamp=$(VERSION)

.PHONY: all build demo test test-short bench bench-micro lint fuzz soak deps clean generate generate-check package package-test

all: build

deps:
	@bash .ci/deps

# Pure Go (CGO_ENABLED=0): xvsd drops capabilities on every thread, which
# needs a binary without cgo.
build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# The Debian package, bin/xvs_VERSION_ARCH.deb (dpkg-deb): xvsd, xvsadm,
# the systemd unit, the commented /etc/xvs/xvs.toml (a conffile), the man
# pages and bash completion the binaries write from their own tables, and
# configs/ as examples. The binaries are build's, stamped with $(VERSION)
# (LDFLAGS), and the package takes its version from them. See
# internal/pkg/mkdeb.sh.
package: build
	VERSION='$(VERSION)' bash internal/pkg/mkdeb.sh $(BIN)

# Installs the package with dpkg -i, checks the installed default
# (xvsd -check), the man pages (man -w), the completion and the unit
# (systemd-analyze verify), then purges it (as root; CI runs it after make
# test).
package-test: deps package
	bash internal/pkg/test.sh $$(ls -t $(BIN)/xvs_*.deb | head -n 1)

# A real director forwarding real TCP and UDP between processes in network
# namespaces (LVS-DR), printing what happened.
demo: deps
	$(GO) run ./internal/demo -config configs/demo.toml

# Unit tests under the race detector with the end-to-end suite (every mode
# through a live director, in namespaces), then the end-to-end suite again
# with the XDP fast path forced on; first, that the committed BPF objects
# are what their C sources compile to.
test: deps generate-check
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...
	XVS_E2E_FAST_PATH=1 $(GO) test -race -count=1 -timeout 15m ./e2e/

# Unit tests only (no root needed).
test-short:
	$(GO) test -short -count=1 ./sched/... ./conntrack/... ./dataplane/packet/... ./control/...

# Throughput and latency of xvs against the machine's ceilings (XDP, AF_XDP)
# and the kernel's own load balancer (nftables DNAT), in network namespaces,
# as root. Writes bench/results/; BENCH_QUICK=1 for a short run, BENCH_TUNE=1
# to measure the data path's knobs instead, other BENCH_* knobs in
# bench/main.go. (Micro-benchmarks: go test -bench . ./dataplane/...)
BENCH_APT := nftables conntrack
bench: deps
	@command -v nft >/dev/null && command -v conntrack >/dev/null || { \
		echo "installing: $(BENCH_APT)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $(BENCH_APT) >/dev/null; }
	$(GO) run ./bench
	@$(MAKE) --no-print-directory bench-micro

# The per-frame path per mode, the SYN proxy's XDP answer next to a
# frame only steered (the kernel's time, BPF_PROG_RUN; root), the connection table next to Go's map and
# sync.Map measured in the same run, and every scheduler (ns/op, allocs/op).
# BASE=<commit> instead runs BenchmarkForward at that commit and at the
# working tree, interleaved in one run, and compares them with benchstat
# (bench/micro/compare.sh; COUNT rounds, default 6).
COUNT ?= 6
bench-micro:
ifdef BASE
	bash bench/micro/compare.sh $(BASE) $(COUNT)
else
	$(GO) test -run '^$$' -bench 'BenchmarkForward' -benchmem -benchtime 300000x ./dataplane/
	$(GO) test -run '^$$' -bench 'BenchmarkXDPSynCookie' -benchtime 200000x ./dataplane/
	$(GO) test -run '^$$' -bench '^Benchmark(LookupHit|LookupMiss|LookupHitParallel|Churn)$$' -benchmem ./conntrack/
	$(GO) test -run '^$$' -bench '^BenchmarkPick$$' -benchmem -benchtime 200000x ./sched/
endif

# The BPF programs (dataplane/bpf/*.c) compiled by cilium/ebpf's bpf2go into
# the committed *_bpfel.o and *_bpfel.go, so that `go build` needs no clang.
# generate-check (part of make test) fails when a committed object is not
# what its source compiles to.
BPF_APT := clang llvm libbpf-dev
export BPF2GO_CFLAGS ?= -O2 -g -Wall -Werror -idirafter /usr/include/$(shell uname -m)-linux-gnu
generate:
	@command -v clang >/dev/null && test -f /usr/include/bpf/bpf_helpers.h || { \
		echo "installing: $(BPF_APT)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $(BPF_APT) >/dev/null; }
	cd dataplane/bpf && $(GO) generate .

generate-check: generate
	@git diff --exit-code --stat -- dataplane/bpf || { \
		echo "the committed BPF objects differ from what their sources compile to: run make generate and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- dataplane/bpf)" || { \
		git status --porcelain -- dataplane/bpf; echo "untracked generated BPF files: run make generate and commit"; exit 1; }

# gofmt, go vet and staticcheck over every Go file (tracked, and new ones
# git does not ignore); CI runs it before the tests and fails on any finding.
# staticcheck is pinned and comes through the module proxy, as the modules do.
lint:
	@files=$$(git ls-files --cached --others --exclude-standard -- '*.go' | while read -r f; do [ -f "$$f" ] && echo "$$f"; done); \
		bad=$$(gofmt -l $$files); \
		if [ -n "$$bad" ]; then echo "gofmt -l (run gofmt -w on these):"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Mixed TCP/UDP load through every forwarding mode, SOAK long in all
# (bounded at 2h); reports connections made and failed and memory over time.
SOAK ?= 10m
soak: deps
	XVS_SOAK=$(SOAK) $(GO) test -count=1 -v -run '^TestSoak$$' -timeout 0 ./e2e/

# Every fuzz target for FUZZTIME each (their seed corpora also run in
# `make test`).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf $(BIN)
