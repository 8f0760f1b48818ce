SHELL := /bin/bash
# Fjord: `make run` builds and starts a server on a local data dir;
# `make test` runs every test; `make bench` prints the benchmark tables.

GO          ?= go
BIN         := bin/fjord
NODEBIN     := appliance/node/nodebin/embedded
SHIM        := $(NODEBIN)/containerd-shim-runc-v2
CONTAINERD  := $(NODEBIN)/containerd
DATA_DIR    ?= $(CURDIR)/data
KUBE_VERSION := v1.37.2
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
AS_POSTGRES := $(if $(SUDO),sudo -u postgres,runuser -u postgres --)

# The binary is stripped of its symbol table and DWARF (-s -w): a third
# smaller, so `fjord sync`, `fjord status` and the rest start faster. Stack
# traces and pprof profiles still resolve (they use the pclntab, which stays);
# only a debugger needs DWARF: `make build STRIP=` keeps it.
STRIP ?= -s -w
# The embedded Kubernetes reports its real version (kubectl version, /version).
LDFLAGS := $(STRIP) -X main.Version=$(VERSION) \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=37 \
	-X k8s.io/client-go/pkg/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=37

# Debian packages the tests and benchmarks use.
TEST_PACKAGES := git postgresql openssh-server fio cloud-init
# Debian packages the node (kubelet, containerd) needs on the host.
NODE_PACKAGES := runc containernetworking-plugins iptables busybox-static
# The demo and test image, from Debian's busybox-static (1.35). A tag that
# is not `latest` keeps the default pull policy at IfNotPresent: no
# registry is reachable from these nodes.
TEST_IMAGE := docker.io/library/busybox:1.35
# Debian packages the KVM image's build and its boot test need on the
# host: qemu-img and qemu-system-x86_64 (software emulation here: no
# /dev/kvm), sfdisk, mkfs.ext4, losetup/partx, cloud-localds for the NoCloud
# seed's `cidata` disk, socat to reach the host's Git server from qemu's
# isolated user network, git for that server.
VM_IMAGE_PACKAGES := debootstrap qemu-utils qemu-system-x86 fdisk e2fsprogs util-linux cloud-image-utils socat git
# Debian packages the kind-like node e2e needs on the host: nodes are
# systemd-nspawn containers booting a debootstrapped Debian 12, the host
# serves Git over ssh (a throwaway sshd) and http (git http-backend).
E2E_NODE_PACKAGES := debootstrap systemd-container openssh-server git iptables util-linux

.PHONY: all build run test unit e2e bench deps-test deps-node deps-e2e-nodes node-rootfs test-e2e-nodes postgres clean
.PHONY: deps-vm-image vm-image test-vm-image

all: build

# kustomize loads Go plugins (.so files) unless built without: Fjord never
# does, and a program that links package plugin keeps every exported method
# of every package and exports all its symbols (kubectl builds the same way).
# The binary is 252 MB instead of 310, less of it resident (docs/benchmarks.md).
TAGS := kustomize_disable_go_plugin_support

build: images/embedded/pause.tar $(SHIM) $(CONTAINERD)
	cd $(NODEBIN) && sha256sum containerd containerd-shim-runc-v2 > SHA256SUMS
	$(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/fjord

# containerd and its runc shim, embedded in fjord and extracted at start:
# each runs as a process of its own (one shim for all pods), so each is a small
# program rather than fjord re-executed (appliance/node/nodebin).
PAGEOUT_SOURCES := $(filter-out %_test.go,$(wildcard appliance/pageout/*.go))
$(SHIM): $(filter-out %_test.go,$(wildcard cmd/containerd-shim-runc-v2/*.go)) $(PAGEOUT_SOURCES) go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@ ./cmd/containerd-shim-runc-v2
$(CONTAINERD): cmd/fjord-containerd/main.go $(PAGEOUT_SOURCES) go.mod go.sum
	$(GO) build -trimpath -ldflags '-s -w -X github.com/containerd/containerd/v2/version.Version=2.4.2' -o $@ ./cmd/fjord-containerd

# ---- images (images/) -------------------------------------------------------
# The pause image is built into the binary (images/embed.go): a static
# images/pause in an otherwise empty rootfs, archived by images/build, whose
# --pause names it images.PauseImage. `make images` also builds the busybox
# image a node's test pods use, from Debian's busybox-static.
IMAGES_ARCH    := $(shell $(GO) env GOARCH)
IMAGES_SOURCES := $(filter-out %_test.go,$(wildcard images/*.go images/build/*.go images/pause/*.go))
BUSYBOX        ?= /bin/busybox

.PHONY: images

# The builder runs here (GOOS/GOARCH unset); the pause program is built for
# the binary's target.
images/embedded/pause.tar: $(IMAGES_SOURCES)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && mkdir "$$tmp/rootfs" && \
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGES_ARCH) $(GO) build -trimpath -ldflags '-s -w' -o "$$tmp/rootfs/pause" ./images/pause && \
	GOOS= GOARCH= $(GO) run ./images/build --pause --rootfs "$$tmp/rootfs" --arch $(IMAGES_ARCH) -o $@

images: images/embedded/pause.tar
	@dpkg -s busybox-static >/dev/null 2>&1 || \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static
	mkdir -p bin/images
	GOOS= GOARCH= $(GO) run ./images/build --busybox $(BUSYBOX) --name $(TEST_IMAGE) -o bin/images/busybox.tar
# ---- end images -------------------------------------------------------------

# The data dir's disk may fail etcd's 10 ms fsync guidance on a developer VM:
# warn instead of refusing (production keeps --fsync-gate=enforce). As root
# the node runs too, with the demo image imported; otherwise the control
# plane alone (--disable-agent).
ifeq ($(shell id -u),0)
run: build deps-node images
	mkdir -p $(DATA_DIR)/agent/images
	cp bin/images/busybox.tar $(DATA_DIR)/agent/images/
	./$(BIN) server --data-dir $(DATA_DIR) --fsync-gate=warn $(ARGS)
else
run: build
	mkdir -p $(DATA_DIR)
	./$(BIN) server --disable-agent --data-dir $(DATA_DIR) --fsync-gate=warn $(ARGS)
endif

deps-node:
	@missing=""; for p in $(NODE_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; fi

deps-e2e-nodes:
	@missing=""; for p in $(E2E_NODE_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; fi

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

unit: helm
	$(GO) vet ./...
	HELM=$(CURDIR)/bin/helm $(GO) test ./...

e2e: build kubeseal postgres images
	FJORD_BIN=$(CURDIR)/$(BIN) FJORD_TEST_IMAGE_ARCHIVE=$(CURDIR)/bin/images/busybox.tar FJORD_TEST_IMAGE=$(TEST_IMAGE) KUBESEAL=$(CURDIR)/bin/kubeseal FJORD_TEST_POSTGRES='$(PG_DSN)' $(GO) test -tags e2e -count=1 -timeout 40m -v -skip 'TestBootNode' ./e2e/ 2>&1 | tee e2e.log | grep -E '^(=== RUN|--- |\s+--- |PASS|FAIL|ok|panic)|_test.go'; \
		exit $${PIPESTATUS[0]}

# The node root filesystem (Debian 12 + systemd + cloud-init + runc, CNI,
# iptables) is built once by debootstrap (~8 min) and cached outside the
# repository in /var/cache/fjord-e2e/rootfs-<hash of its package list>.
node-rootfs: deps-e2e-nodes
	$(SUDO) ./images/node/rootfs.sh

# Kind-like nodes (e2e/bootnode*_test.go): each boots systemd in a
# systemd-nspawn container from a NoCloud seed made by `fjord bootstrap
# cloud-init`. They need root; elsewhere they are skipped, and say so.
test-e2e-nodes: build images
	@if [ "$$(id -u)" != 0 ]; then echo "node e2e skipped: systemd-nspawn nodes need root"; exit 0; fi; \
	$(MAKE) --no-print-directory deps-e2e-nodes && rootfs=$$(./images/node/rootfs.sh) && \
	FJORD_E2E_ROOTFS=$$rootfs FJORD_BIN=$(CURDIR)/$(BIN) FJORD_TEST_IMAGE_ARCHIVE=$(CURDIR)/bin/images/busybox.tar FJORD_TEST_IMAGE=$(TEST_IMAGE) \
		$(GO) test -tags e2e -count=1 -timeout 30m -v -run 'TestBootNode' ./e2e/ 2>&1 | tee e2e-nodes.log | grep -E '^(=== RUN|--- |\s+--- |PASS|FAIL|ok|panic)|_test.go|PHASES'; \
		exit $${PIPESTATUS[0]}

test: deps-test deps-node unit compat e2e test-e2e-nodes

# ---- KVM image (images/vm/) -------------------------------------------------
# bin/fjord-vm.qcow2: the node root filesystem above plus a kernel, GRUB
# (BIOS boot), udev and DHCP networking, with bin/fjord installed. The
# extra packages are cached beside the node tree (/var/cache/fjord-e2e/vm-*).
VM_IMAGE ?= bin/fjord-vm.qcow2
deps-vm-image:
	@missing=""; for p in $(VM_IMAGE_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; fi

vm-image: build deps-vm-image
	$(SUDO) ./images/vm/build.sh $(BIN) $(VM_IMAGE)

# Boots a throwaway overlay of the image under qemu (TCG: tens of minutes,
# not part of `make test` or CI) with a NoCloud seed from `fjord bootstrap
# cloud-init`, the guide's repository served from this host, until
# fjord.service is READY; prints the boot's phases (docs/benchmarks.md).
test-vm-image: vm-image images
	$(GO) run ./e2e/vmimage -image $(VM_IMAGE) -bin $(BIN) -image-archive bin/images/busybox.tar -test-image $(TEST_IMAGE) $(ARGS)

# Each prints a markdown table; the figures are kept in docs/benchmarks.md.
# Flux side by side needs its controllers built once
# (../shared/bench/flux/flux-build.sh, into /tmp/flux-anchor); when they are
# there FLUX defaults to flux-bench.sh, otherwise the table says Flux did not run.
FLUX_DIR    ?= $(CURDIR)/../shared/bench/flux
FLUX        ?= $(if $(wildcard /tmp/flux-anchor/kustomize-controller),$(FLUX_DIR)/flux-bench.sh)
BENCH_GITOPS_N ?= 100 1000 5000
bench: build deps-test deps-node images
	$(GO) run ./e2e/bench/fsync -n 3
	FJORD_BIN=$(CURDIR)/$(BIN) $(GO) run ./e2e/bench/startup -runs 5
	FJORD_BIN=$(CURDIR)/$(BIN) $(GO) run ./e2e/bench/sealing
	FJORD_BIN=$(CURDIR)/$(BIN) $(GO) run ./e2e/bench/verify
	FJORD_BIN=$(CURDIR)/$(BIN) $(GO) run ./e2e/bench/snapshot -n 1000
	cp $(BIN) /tmp/fjord-bench-bin && $(GO) build -o /tmp/fjord-gitops-bench ./e2e/bench/gitops && \
	for n in $(BENCH_GITOPS_N); do /tmp/fjord-gitops-bench -bin /tmp/fjord-bench-bin -n $$n $(if $(FLUX),-flux $(FLUX)) || exit 1; done
	@if [ "$$(id -u)" = 0 ]; then FJORD_BIN=$(CURDIR)/$(BIN) FJORD_TEST_IMAGE_ARCHIVE=$(CURDIR)/bin/images/busybox.tar FJORD_TEST_IMAGE=$(TEST_IMAGE) $(GO) run ./e2e/bench/node; \
	else echo "node benchmark skipped: the node needs root"; fi

# Upstream's helm CLI, of the version go.mod pins: the build stage's golden
# tests compare Fjord's chart rendering with its `helm template`.
.PHONY: helm
helm:
	cd e2e/helmcli && $(GO) build -o ../../bin/helm helm.sh/helm/v3/cmd/helm

# Upstream's kubeseal CLI, of the version e2e/sealcompat pins: the e2e tests
# drive it against Fjord, and it is handy for sealing by hand.
.PHONY: kubeseal compat
kubeseal:
	cd e2e/sealcompat && $(GO) build -o ../../bin/kubeseal github.com/bitnami/sealed-secrets/cmd/kubeseal

# Fjord's sealing against upstream sealed-secrets, both ways (its own module).
compat:
	cd e2e/sealcompat && $(GO) vet ./... && $(GO) test ./...

clean:
	rm -rf bin e2e.log e2e-nodes.log vm-console.log images/embedded/pause.tar $(SHIM) $(CONTAINERD) $(NODEBIN)/SHA256SUMS
