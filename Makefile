# as2gate: the two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
BIN      := bin/as2gate
PKGS     := ./...
FUZZTIME ?= 30s
# 1s gives the small cases enough iterations to be read; a 100 MB case still runs once or twice.
BENCHTIME  ?= 1s
BENCHCOUNT ?= 1

.PHONY: run build test testdeps lint bench bench-protocol fuzz clean

## run: build and start the gateway with its embedded defaults
run: build
	./$(BIN) serve

## build: the single static binary
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/as2gate

## test: install what the interop tests need, then run every test
test: testdeps
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 20m $(PKGS)

## testdeps: the outside programs the tests run (OpenSSL, Java + BouncyCastle, Node + libas2, PostgreSQL)
testdeps:
	bash scripts/testdeps.sh

## lint: formatting and vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## bench: two gateway processes on loopback: throughput, receiver, pick-up latency, large files
## and, when `make testdeps` installed it, the libas2 peer. Sizes: make bench BENCHFLAGS='-big 100MB,1GB,4GB'
LIBAS2_DIR := interop/libas2
BENCHFLAGS ?=
bench:
	$(GO) run ./cmd/as2bench $(if $(wildcard $(LIBAS2_DIR)/node_modules/libas2),-libas2 $(LIBAS2_DIR)) $(BENCHFLAGS)

## bench-protocol: the protocol benchmarks (allocations reported), a few minutes on two cores.
## Compare runs with benchstat: make bench-protocol BENCHCOUNT=6 > new.txt
bench-protocol:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -timeout 60m ./cms ./as2

## fuzz: each fuzz target for FUZZTIME (go test runs one target at a time)
fuzz:
	@set -e; for pkg in ./cms ./as2 ./internal/config; do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean:
	rm -rf bin
