# xvs: userspace L4 load balancer over AF_XDP.
# `make demo` and `make test` work on a fresh Debian machine as root: they
# install what they need (.ci/deps) first.

GO       ?= go
BIN      := bin
export GOFLAGS ?= -buildvcs=false
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0

.PHONY: all build demo test test-short bench lint fuzz deps clean

all: build

deps:
	@bash .ci/deps

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# A real director forwarding real TCP and UDP between processes in network
# namespaces (LVS-DR), printing what happened.
demo: deps
	$(GO) run ./internal/demo -config configs/demo.toml

# Unit tests under the race detector, then the end-to-end suite (DR and NAT
# through a live director, in namespaces).
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

# Unit tests only (no root needed).
test-short:
	$(GO) test -short -count=1 ./sched/... ./conntrack/... ./dataplane/packet/... ./control/...

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./dataplane/... ./conntrack/... ./sched/...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./dataplane/packet/

clean:
	rm -rf $(BIN)
