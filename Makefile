# segd: every target works offline once the Go module cache is filled, and needs no root.
GO       ?= go
BIN      := bin/segd
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
FUZZTIME ?= 30s

.PHONY: run build test test-long bench fuzz lint clean

## run: build, then serve demo data from ./data and print an example request
run: build
	$(BIN) serve --demo --data-dir ./data --log-format console

## build: compile bin/segd (does not run tests)
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/segd

## test: run every test, fuzz corpora included
test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

## test-long: the full durability run (20 SIGKILLs over a million memberships), then every
## test under the race detector
test-long:
	SEGD_TEST_LONG=1 $(GO) test -count=1 -v -timeout 60m -run 'TestDurabilityUnderKill' ./cmd/segd
	$(GO) test -count=1 -race -timeout 60m ./...

## bench: Go micro-benchmarks with allocations into bench.txt (compare two with benchstat),
## then 5s of load on `segd serve --demo` beside the echo baseline (bench/e2e.sh)
bench: build
	bash -o pipefail -c '$(GO) test -run "^$$" -bench . -benchmem -count 5 ./... | tee bench.txt'
	bash bench/e2e.sh $(BIN)

## fuzz: run each fuzz target for FUZZTIME
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$target"; \
	    $(GO) test $$pkg -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) || exit 1; \
	  done; \
	done

## lint: formatting and vet
lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l .; echo "gofmt needed"; exit 1)
	$(GO) vet ./...

## clean: remove build output and the demo data folder
clean:
	rm -rf bin data bench.txt
