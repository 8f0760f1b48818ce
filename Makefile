SHELL := /bin/bash
# Fjord: `make run` builds and starts a server on a local data dir;
# `make test` runs every test; `make bench` prints the benchmark tables.

GO          ?= go
BIN         := bin/fjord
DATA_DIR    ?= $(CURDIR)/data
KUBE_VERSION := v1.37.2
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
AS_POSTGRES := $(if $(SUDO),sudo -u postgres,runuser -u postgres --)

# The embedded Kubernetes reports its real version (kubectl version, /version).
LDFLAGS := -X main.Version=$(VERSION) \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=37 \
	-X k8s.io/client-go/pkg/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=37

# Debian packages the tests and benchmarks use.
TEST_PACKAGES := git postgresql openssh-server fio

.PHONY: all build run test unit e2e bench deps-test postgres clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/fjord

# The data dir's disk may fail etcd's 10 ms fsync guidance on a developer VM:
# warn instead of refusing (production keeps --fsync-gate=enforce).
run: build
	mkdir -p $(DATA_DIR)
	./$(BIN) server --disable-agent --data-dir $(DATA_DIR) --fsync-gate=warn $(ARGS)

deps-test:
	@missing=""; for p in $(TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; fi

# A PostgreSQL on loopback for the kine/PostgreSQL tests.
PG_DSN := postgres://fjord:fjord@127.0.0.1:5432/fjord?sslmode=disable
postgres: deps-test
	@pg_lsclusters -h 2>/dev/null | grep -q online || $(SUDO) pg_ctlcluster $$(pg_lsclusters -h | awk 'NR==1{print $$1, $$2}') start
	@$(AS_POSTGRES) psql -tAc "SELECT 1 FROM pg_roles WHERE rolname='fjord'" | grep -q 1 || \
		$(AS_POSTGRES) psql -qc "CREATE ROLE fjord LOGIN CREATEDB PASSWORD 'fjord'"
	@$(AS_POSTGRES) psql -tAc "SELECT 1 FROM pg_database WHERE datname='fjord'" | grep -q 1 || \
		$(AS_POSTGRES) psql -qc "CREATE DATABASE fjord OWNER fjord"

unit:
	$(GO) vet ./...
	$(GO) test ./...

e2e: build kubeseal postgres
	FJORD_BIN=$(CURDIR)/$(BIN) KUBESEAL=$(CURDIR)/bin/kubeseal FJORD_TEST_POSTGRES='$(PG_DSN)' $(GO) test -tags e2e -count=1 -timeout 40m -v ./e2e/ 2>&1 | tee e2e.log | grep -E '^(=== RUN|--- |\s+--- |PASS|FAIL|ok|panic)|_test.go'; \
		exit $${PIPESTATUS[0]}

test: deps-test unit compat e2e

# Each prints a markdown table; the figures are kept in docs/benchmarks.md.
# Flux side by side needs its controllers built once:
#   ../shared/bench/flux/flux-build.sh, then FLUX=../shared/bench/flux/flux-bench.sh
bench: build deps-test
	$(GO) run ./e2e/bench/fsync -n 3
	FJORD_BIN=$(CURDIR)/$(BIN) $(GO) run ./e2e/bench/startup -runs 5
	FJORD_BIN=$(CURDIR)/$(BIN) $(GO) run ./e2e/bench/sealing
	cp $(BIN) /tmp/fjord-bench-bin && $(GO) run ./e2e/bench/gitops -bin /tmp/fjord-bench-bin -n 1000 $(if $(FLUX),-flux $(FLUX))

# Upstream's kubeseal CLI, of the version e2e/sealcompat pins: the e2e tests
# drive it against Fjord, and it is handy for sealing by hand.
.PHONY: kubeseal compat
kubeseal:
	cd e2e/sealcompat && $(GO) build -o ../../bin/kubeseal github.com/bitnami/sealed-secrets/cmd/kubeseal

# Fjord's sealing against upstream sealed-secrets, both ways (its own module).
compat:
	cd e2e/sealcompat && $(GO) vet ./... && $(GO) test ./...

clean:
	rm -rf bin e2e.log
