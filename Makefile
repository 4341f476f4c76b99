# GitLab Discovery Agent. `make demo` and `make test` are the two entry points (README).
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
export PATH := $(PATH):$(GOBIN)

BIN := bin
SIM_ADDR ?= 127.0.0.1:8929
DEMO_GROUPS ?= 40
DEMO_PROJECTS ?= 3000
SOAK_N ?= 60
SOAK_SEED ?= $(shell date +%s)

.PHONY: all build test unit fuzz vet tools demo bench soak local-up local-down sam-local-env clean

all: build

# `discovery-agent version` and discovery_build_info say what was built, from where, when.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(BUILD_DATE) \
	-X github.com/gl2gh/discovery-agent/internal/metrics.Version=$(VERSION)

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./local/cmd/... ./local/alert-webhook

vet:
	$(GO) vet ./...

unit: vet
	$(GO) test -race -count=1 -timeout 30m ./...

# Every fuzz target (a func FuzzXxx in a _test.go file, found in the tree) for
# FUZZTIME each, one at a time: `go test -fuzz` takes one target of one package.
# `make test` runs them briefly; `make fuzz FUZZTIME=10m` searches longer. A failing
# input is saved under the package's testdata/fuzz/: commit it with the fix.
FUZZTIME ?= 8s
fuzz:
	@set -e; \
	for dir in $$(find . -path '*/.*' -prune -o -name testdata -prune -o -name '*_test.go' -print \
			| xargs grep -l '^func Fuzz' | xargs -n1 dirname | sort -u); do \
		targets=$$($(GO) test -list '^Fuzz' $$dir); \
		for target in $$(echo "$$targets" | grep '^Fuzz'); do \
			echo "fuzz $$dir $$target for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$dir; \
		done; \
	done

# Everything: Go tests (integration tests included: moto, promtool, amtool, Prometheus,
# docker-compose, aws-lambda-rie), short fuzzing, plus the template lint on its own line.
test: unit fuzz cfn-lint

# Tools the tests use that come from the Go module proxy.
tools: lambda-tools

# A full local discovery against the simulator; exports land in ./exports/latest.
demo: build
	BIN=$(BIN) SIM_ADDR=$(SIM_ADDR) DEMO_GROUPS=$(DEMO_GROUPS) DEMO_PROJECTS=$(DEMO_PROJECTS) local/demo.sh

# `scan` interrupted SOAK_N times (SIGINT, SIGTERM, SIGKILL at moments SOAK_SEED picks),
# resumed until done, compared with the simulator's truth; `make test` runs 6.
soak:
	SOAK_N=$(SOAK_N) SOAK_SEED=$(SOAK_SEED) $(GO) test -count=1 -v -timeout 60m -run '^TestSoakInterruptedScans$$' ./local/cmd/discovery-agent

# Benchmarks; figures go to docs/BENCHMARKS.md.
bench:
	local/bench.sh

# The monitoring stack without Docker: agent, simulator, Prometheus (:9091), Alertmanager (:9093).
local-up: build
	BIN=$(BIN) local/stack/up.sh

local-down:
	local/stack/down.sh

# What docs/DEPLOY.md's `sam local invoke` needs: moto on :5000 and the GitLab
# simulator on :8929 with the tables, queues, bucket, secret and runs events/ names.
# Prints the env.json to use; Ctrl-C stops it.
sam-local-env:
	$(GO) run ./e2e/cmd/sam-local-env

clean:
	rm -rf $(BIN) exports .local

include functions/lambda.mk
