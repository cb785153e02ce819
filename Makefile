# etcdsafe: `make demo` shows the tool end to end, `make test` proves it.
GO       ?= go
BIN      := bin/etcdsafe
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
FUZZTIME ?= 30s
BENCH_SIZES ?= 100000 1000000
BENCH_DBS   := $(foreach n,$(BENCH_SIZES),.cache/bench-$(n).db)
BENCH_NEXT  := $(foreach n,$(BENCH_SIZES),.cache/bench-$(n)-next.db)
BENCH_NIGHTS_SIZE ?= 100000
BENCH_NIGHTS := .cache/bench-$(BENCH_NIGHTS_SIZE)-nights
BENCH_DATA  := $(BENCH_DBS) $(BENCH_NEXT) $(BENCH_NIGHTS)/nights.json

.PHONY: all build test test-short test-race e2e demo bench bench-data fuzz lint verify clean
.PHONY: release man completions
.PHONY: check-deploy

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/etcdsafe

## test: the whole suite, real embedded etcd included; RACE=1 adds the race
## detector (what CI runs: make test RACE=1)
RACE ?=
test:
	$(GO) test $(if $(filter 1 true yes,$(RACE)),-race )-count=1 ./...

## test-short: skips the tests that start an embedded etcd
test-short:
	$(GO) test -short ./...

## test-race: alias of make test RACE=1
test-race:
	$(MAKE) test RACE=1

## e2e: real etcd and kube-apiserver built from e2e/go.mod (cached): backup, parity, create-ready, wiped master
e2e:
	bash scripts/e2e.sh

## demo: embedded etcd with a realistic cluster, then every read command on its snapshot
demo: build
	bash scripts/demo.sh

## bench-data: reproducible snapshots of $(BENCH_SIZES) objects (seed 1), made by a real etcd; the next
## night of each (bench-N-next.db: 1% changed, 0.1% deleted, 0.1% added, one key rewritten 10,000 times)
## and 30 nights of the $(BENCH_NIGHTS_SIZE) one ($(BENCH_NIGHTS)/night-NN.db), both by an etcd restored
## from it as the same member (same member and cluster ID, revisions go on); what changed in the .json beside
bench-data: $(BENCH_DATA)
.cache/bench-%.db:
	mkdir -p .cache
	$(GO) run ./internal/cmd/mkbench -n $* -out $@
# (make picks this rule over the one above for bench-N-next.db: shorter stem)
.cache/bench-%-next.db: .cache/bench-%.db
	rm -f $@ $(@:.db=.json)
	$(GO) run ./internal/cmd/mkbench -n $* -base $< -next $@
$(BENCH_NIGHTS)/nights.json: .cache/bench-$(BENCH_NIGHTS_SIZE).db
	rm -rf $(BENCH_NIGHTS)
	$(GO) run ./internal/cmd/mkbench -n $(BENCH_NIGHTS_SIZE) -base $< -nights $(BENCH_NIGHTS) -count 30

## bench: every measurement next to its comparison (bench/report.md, bench/report.json), then the Go benchmarks
## (ONLY=diff,du,timeline runs those rows alone, into bench/report-only-diff-du-timeline.md)
ONLY ?=
bench: $(BENCH_DATA)
	python3 scripts/bench.py --nights $(BENCH_NIGHTS) $(if $(ONLY),--only $(ONLY) )$(BENCH_DBS)
	$(if $(ONLY),@echo "ONLY=$(ONLY): Go benchmarks skipped",ETCDSAFE_BENCH_DB=$(abspath $(firstword $(BENCH_DBS))) $(GO) test -run '^$$' -bench . -benchmem -benchtime 3x ./inspect/ ./cmd/etcdsafe/ ./archive/ ./restore/)

## fuzz: every fuzz target for $(FUZZTIME)
fuzz:
	@for pkg in ./decode/ ./inspect/ ./archive/ ./keyindex/; do \
		[ -d $$pkg ] || continue; \
		for t in $$($(GO) test $$pkg -list '^Fuzz' | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; $(GO) test $$pkg -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; \
		done; done

GOLANGCI_VERSION := v2.15.0
GOLANGCI := .cache/tools/golangci-lint-$(GOLANGCI_VERSION)/golangci-lint

## golangci-lint built from its module once, then cached
$(GOLANGCI):
	GOBIN=$(abspath $(dir $(GOLANGCI))) GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

## lint: golangci-lint (.golangci.yml) on the main and e2e modules, go.mod tidiness
lint: $(GOLANGCI)
	$(GOLANGCI) run ./...
	cd e2e && ../$(GOLANGCI) run --config ../.golangci.yml ./...
	cd deploy && ../$(GOLANGCI) run --config ../.golangci.yml ./...
	$(GO) mod tidy -diff
	cd e2e && $(GO) mod tidy -diff
	cd deploy && $(GO) mod tidy -diff

NFPM_VERSION := v2.45.2
NFPM := .cache/tools/nfpm-$(NFPM_VERSION)/nfpm

## nfpm built from its module once, then cached (as golangci-lint)
$(NFPM):
	GOBIN=$(abspath $(dir $(NFPM))) GOFLAGS= $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

## release: static linux/amd64 and linux/arm64 binaries, .deb and .rpm packages, completions,
## man pages and SHA256SUMS in dist/, reproducibly (scripts/release.sh; ARCHES=, FORMATS=, DIST=)
release: $(NFPM)
	NFPM=$(NFPM) GO=$(GO) bash scripts/release.sh

## man: the man pages (cobra's doc generator) in dist/man
man: build
	rm -rf dist/man.tmp && mkdir -p dist && $(BIN) man dist/man.tmp && rm -rf dist/man && mv dist/man.tmp dist/man

## completions: bash, zsh and fish completion scripts in dist/completions
completions: build
	rm -rf dist/completions.tmp && mkdir -p dist/completions.tmp
	$(BIN) completion bash >dist/completions.tmp/etcdsafe.bash
	$(BIN) completion zsh >dist/completions.tmp/_etcdsafe
	$(BIN) completion fish >dist/completions.tmp/etcdsafe.fish
	rm -rf dist/completions && mv dist/completions.tmp dist/completions

## check-deploy: deploy/'s tests (a module of its own): systemd-analyze verify and security on the
## units (Debian's systemd package installed when missing), the alert rules through Prometheus'
## parser and rule engine, the CronJob's confinement; the e2e suite dry-runs the manifests
check-deploy:
	@command -v systemd-analyze >/dev/null 2>&1 || { echo "== check-deploy: installing systemd (Debian's package) for systemd-analyze"; \
		mkdir -p .cache; if [ "$$(id -u)" = 0 ]; then { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; } >.cache/check-deploy-apt.log 2>&1 || tail -20 .cache/check-deploy-apt.log; \
		else echo "== check-deploy: not root: apt-get install systemd yourself"; fi; }
	cd deploy && $(GO) test -count=1 ./...

verify: lint test check-deploy

clean:
	rm -rf bin demo-out
