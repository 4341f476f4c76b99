# Lambda builds, the template lint and the AWS end-to-end harness. The root Makefile
# includes this file; `sam build` runs the build-<LogicalId> targets (template.yaml:
# BuildMethod makefile, CodeUri .) with ARTIFACTS_DIR set.

GO ?= go
# The emulator has no tagged releases: pin the commit for repeatable CI.
RIE_VERSION ?= v0.0.0-20261030222936-bef5c4ba774d
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w"
LAMBDA_ENV := GOOS=linux GOARCH=arm64 CGO_ENABLED=0
LAMBDA_BIN ?= bin/lambda

.PHONY: build-SchedulerFunction build-WorkerFunction build-ExporterFunction build-ReconcilerFunction lambda-bins lambda-tools cfn-lint e2e-aws

build-SchedulerFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/scheduler

build-WorkerFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/worker

build-ExporterFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/exporter

build-ReconcilerFunction:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/reconciler

# The four bootstraps for this machine's architecture, to run under aws-lambda-rie.
lambda-bins:
	for f in scheduler worker exporter reconciler; do \
	  CGO_ENABLED=0 $(GO) build $(LAMBDA_FLAGS) -o $(LAMBDA_BIN)/$$f/bootstrap ./functions/$$f || exit 1; \
	done

# aws-lambda-rie, the Lambda Runtime Interface Emulator the end-to-end test runs the
# functions under.
lambda-tools:
	$(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

cfn-lint:
	cfn-lint template.yaml

# A full run under aws-lambda-rie with moto as AWS and the simulator as GitLab, to
# watch: E2E_FLAGS="-projects 2000 -groups 60 -workers 3 -kill" for more.
E2E_FLAGS ?=
e2e-aws: lambda-bins
	$(GO) run ./e2e/cmd/e2e-aws -bin $(LAMBDA_BIN) $(E2E_FLAGS)
