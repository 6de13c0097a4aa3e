PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck proto demo bench fleet clean image image-test architecture helm chart lock release-dry-run actionlint

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,demo]'
	$(BIN)/python -m provider_aws.aws.servicemodels
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: install lint helm
	PROVIDER_HELM=$(HELM) $(BIN)/python -m pytest -q -p no:cacheprovider

# helm, built from the Go module proxy into build/bin (pinned here only; kept between runs, and
# rebuilt only when HELM_VERSION changes). Needs Go; the first build takes about two minutes.
HELM_VERSION := v3.22.0
HELM := $(CURDIR)/build/bin/helm
HELM_STAMP := build/bin/.helm-$(HELM_VERSION)
CHART := charts/secrets-store-csi-provider-aws

helm: $(HELM_STAMP)

$(HELM_STAMP):
	@command -v go >/dev/null || { echo "make helm: needs Go to build helm $(HELM_VERSION) (https://go.dev/dl/)" >&2; exit 1; }
	GOBIN=$(CURDIR)/build/bin go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	touch $@

# The chart archive, build/secrets-store-csi-provider-aws-VERSION.tgz.
chart: helm
	$(HELM) lint --strict $(CHART)
	$(HELM) package $(CHART) --destination build

proto: install
	$(BIN)/python protos/generate.py provider_aws/_proto testkit/betterproto_api

architecture: install
	$(BIN)/python scripts/architecture.py --write

demo: install
	$(BIN)/python -m demo

bench: install
	$(BIN)/python -m bench

# Fleet-scale simulation against AWS's account quotas (issue 15): FLEET_NODES provider processes.
FLEET_NODES ?= 4
fleet: install
	$(BIN)/python -m fleet --nodes $(FLEET_NODES) $(if $(GO_MODEL),--go-model)

# The container image (buildah, no daemon). IMAGE_BASE: any Python 3.11 image with the venv
# module, by default the Containerfile's digest-pinned one; machines that cannot pull from public
# registries use `make image-test`'s local base.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= localhost/secrets-store-csi-provider-aws:$(VERSION)
IMAGE_BASE ?= $(shell sed -n 's/^ARG BASE=//p' Containerfile)

image:
	scripts/image-tools.sh
	scripts/image-build.sh '$(IMAGE)' '$(IMAGE_BASE)'

# Builds the image on a local Debian bookworm base (debootstrap, cached in build/image-cache),
# then starts it hardened as the DaemonSet runs it and calls Version over the mounted socket.
image-test: install
	scripts/image-tools.sh
	base=$$(scripts/image-base.sh) && scripts/image-build.sh '$(IMAGE)' "$$base"
	PROVIDER_IMAGE='$(IMAGE)' $(BIN)/python -m pytest -q -p no:cacheprovider tests/image/check_image.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The Secrets Store CSI driver's own provider client (tests/driverclient; issue 14), which the driver-client
# tests in `make test` call our socket with. tests/driverclient/go.mod is the one place its versions are
# pinned (with go.sum committed); the binary is rebuilt only when its sources change.
GO ?= go
DRIVERCLIENT := build/bin/driverclient
DRIVERCLIENT_SRC := $(wildcard tests/driverclient/*.go tests/driverclient/go.mod tests/driverclient/go.sum \
	tests/driverclient/mlog/*.go tests/driverclient/mlog/go.mod)

.PHONY: driverclient
driverclient: $(DRIVERCLIENT)

$(DRIVERCLIENT): $(DRIVERCLIENT_SRC)
	@command -v $(GO) >/dev/null || { echo "make driverclient: needs Go >= 1.25 to build $@ (https://go.dev/dl/)" >&2; exit 1; }
	@mkdir -p $(@D)
	cd tests/driverclient && $(GO) build -mod=readonly -trimpath -o $(CURDIR)/$@.tmp .
	mv $@.tmp $@

test: $(DRIVERCLIENT)

# The real Go provider (aws/secrets-store-csi-driver-provider-aws 3.1.1), the oracle of `make compat`,
# the bench's Go column and the end-to-end suite. Its source is not on the module proxy: it is kept
# beside the project in shared/oracles/go-provider, whose build script builds it with three loopback seams.
GO_PROVIDER_SRC ?= $(firstword $(wildcard ../shared/oracles/go-provider /work/shared/oracles/go-provider))
GOPROVIDER := build/bin/provider-aws-go

.PHONY: goprovider
goprovider: $(GOPROVIDER)

$(GOPROVIDER): $(wildcard $(GO_PROVIDER_SRC)/build.sh $(GO_PROVIDER_SRC)/seams.py $(GO_PROVIDER_SRC)/*.tar.gz)
	@test -n "$(GO_PROVIDER_SRC)" || { echo "make goprovider: the Go provider's source (shared/oracles/go-provider) is not beside this checkout; set GO_PROVIDER_SRC" >&2; exit 1; }
	@command -v $(GO) >/dev/null || { echo "make goprovider: needs Go >= 1.26 (https://go.dev/dl/)" >&2; exit 1; }
	$(GO_PROVIDER_SRC)/build.sh build/go-provider >/dev/null
	@mkdir -p $(@D)
	mv build/go-provider/provider-aws-go $@

# A real control plane for the end-to-end tests (issue 18): etcd from Debian's etcd-server package
# (installed with apt when missing; needs root, as CI is) and kube-apiserver built from k8s.io/kubernetes
# through the module proxy. tests/kubeapiserver/go.mod is the one place its version is pinned; the binary
# is stamped by that version and rebuilt only when the build module changes (a few minutes cold on two
# cores, nothing warm). testkit/cluster.py starts both on loopback.
KUBE_VERSION := $(shell awk '$$1 == "k8s.io/kubernetes" && $$2 ~ /^v/ {print $$2}' tests/kubeapiserver/go.mod)
KUBE_APISERVER := build/bin/kube-apiserver
KUBE_STAMP := build/bin/.kube-apiserver-$(KUBE_VERSION)
KUBE_LDFLAGS := -s -w $(foreach v,gitVersion=$(KUBE_VERSION) \
	gitMajor=$(word 1,$(subst ., ,$(KUBE_VERSION:v%=%))) gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION))) \
	gitTreeState=clean,-X k8s.io/component-base/version.$(v))

.PHONY: cluster etcd
cluster: $(KUBE_STAMP) etcd

$(KUBE_STAMP): tests/kubeapiserver/go.mod tests/kubeapiserver/go.sum
	@command -v $(GO) >/dev/null || { echo "make cluster: needs Go >= 1.24 to build kube-apiserver $(KUBE_VERSION) (https://go.dev/dl/)" >&2; exit 1; }
	@mkdir -p $(@D)
	cd tests/kubeapiserver && $(GO) build -mod=readonly -trimpath -ldflags '$(KUBE_LDFLAGS)' \
		-o $(CURDIR)/$(KUBE_APISERVER).tmp k8s.io/kubernetes/cmd/kube-apiserver
	mv $(KUBE_APISERVER).tmp $(KUBE_APISERVER)
	rm -f build/bin/.kube-apiserver-*
	touch $@

etcd:
	@command -v etcd >/dev/null || scripts/install-etcd.sh

# The end-to-end suite on the real control plane (tests/e2e; `make test` does not collect it).
.PHONY: e2e
e2e: install helm cluster
	PROVIDER_HELM=$(HELM) $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e

# The Secrets Store CSI driver's node plugin and a CSI client that plays the kubelet (csinode), for the
# end-to-end suite (issue 19). Both are built from tests/driverclient, whose go.mod pins the driver for
# driverclient too (the driver binary is that module's `tool`), so one version is pinned in one place.
DRIVER := build/bin/secrets-store-csi-driver
CSINODE := build/bin/csinode
DRIVER_VERSION = $(shell awk '$$1 == "sigs.k8s.io/secrets-store-csi-driver" && $$2 ~ /^v/ {print $$2}' tests/driverclient/go.mod)

.PHONY: driver csinode
driver: $(DRIVER)
csinode: $(CSINODE)

$(DRIVER): $(DRIVERCLIENT_SRC)
	@command -v $(GO) >/dev/null || { echo "make driver: needs Go >= 1.25 to build $@ (https://go.dev/dl/)" >&2; exit 1; }
	@mkdir -p $(@D)
	cd tests/driverclient && $(GO) build -mod=readonly -trimpath \
		-ldflags '-X sigs.k8s.io/secrets-store-csi-driver/pkg/version.BuildVersion=$(DRIVER_VERSION)' \
		-o $(CURDIR)/$@.tmp sigs.k8s.io/secrets-store-csi-driver/cmd/secrets-store-csi-driver
	mv $@.tmp $@

$(CSINODE): $(DRIVERCLIENT_SRC) $(wildcard tests/driverclient/csinode/*.go)
	@command -v $(GO) >/dev/null || { echo "make csinode: needs Go >= 1.25 to build $@ (https://go.dev/dl/)" >&2; exit 1; }
	@mkdir -p $(@D)
	cd tests/driverclient && $(GO) build -mod=readonly -trimpath -o $(CURDIR)/$@.tmp ./csinode
	mv $@.tmp $@

e2e: $(DRIVER) $(CSINODE) $(GOPROVIDER) install

# The seed's flow timed through the real driver for both providers (issue 19): README "Through the real
# driver" under Benchmarks (through `make readme-figures`). Needs root (the driver's private mount namespace) and the control plane.
.PHONY: bench-e2e
bench-e2e: $(DRIVER) $(CSINODE) $(GOPROVIDER) install cluster
	$(BIN)/python -m bench.driverflow

# The image's Python dependencies (runtime and build), pinned with their hashes by pip-compile; the
# Containerfile installs them with --require-hashes. Regenerate after changing a dependency in
# pyproject.toml, or to take updates (needs PyPI, about a minute). pip-tools lives in its own venv.
IMAGE_LOCK := image-requirements.txt
PIP_TOOLS_VERSION := 7.6.2
LOCK_VENV := build/lock-venv

lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) \
		&& $(LOCK_VENV)/bin/pip install --quiet 'pip-tools==$(PIP_TOOLS_VERSION)'; }
	CUSTOM_COMPILE_COMMAND='make lock' $(LOCK_VENV)/bin/pip-compile --quiet --upgrade --generate-hashes \
		--allow-unsafe --strip-extras --build-deps-for wheel --no-emit-index-url --no-emit-find-links \
		--output-file $(IMAGE_LOCK) pyproject.toml

# Release plumbing: what tag vVERSION becomes (the chart archive with the registry's image, the Helm
# repository index, the image's tags and build arguments in build/release/image.env), without pushing.
# The release workflow (.github/workflows/release.yml) runs this target on a tag, then pushes.
RELEASE_REGISTRY ?= ghcr.io/example
RELEASE_CHART_URL ?= https://example.github.io/secrets-store-csi-provider-aws
RELEASE_TAG ?= v$(VERSION)
RELEASE_OUT ?= build/release
RELEASE_ARGS ?=

release-dry-run: helm
	$(PYTHON) scripts/release.py --helm '$(HELM)' --out '$(RELEASE_OUT)' --tag '$(RELEASE_TAG)' \
		--registry '$(RELEASE_REGISTRY)' --chart-url '$(RELEASE_CHART_URL)' $(RELEASE_ARGS)

# Checkers built from the Go module proxy into build/bin like helm, each rebuilt only when its pinned
# version changes: actionlint (the release workflow) and promtool (the chart's alert rules), both run
# by `make test`. promtool's first build compiles much of Prometheus: about 7 CPU-minutes.
ACTIONLINT_VERSION := v1.7.12
PROMTOOL_VERSION := v0.316.0
ACTIONLINT_STAMP := build/bin/.actionlint-$(ACTIONLINT_VERSION)
PROMTOOL_STAMP := build/bin/.promtool-$(PROMTOOL_VERSION)

define go-install-tool
	@command -v go >/dev/null || { echo "make: needs Go to build $(1) (https://go.dev/dl/)" >&2; exit 1; }
	GOBIN=$(CURDIR)/build/bin go install $(1)
	touch $@
endef

.PHONY: actionlint promtool lock release-dry-run
actionlint: $(ACTIONLINT_STAMP)
promtool: $(PROMTOOL_STAMP)

$(ACTIONLINT_STAMP):
	$(call go-install-tool,github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION))

$(PROMTOOL_STAMP):
	$(call go-install-tool,github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION))

test: actionlint promtool
# The bench and the fleet measure it beside ours; `make test`'s bench smoke test runs it too.
bench fleet test: $(GOPROVIDER)

# The differential suite (issue 20): the same Mounts to `provider-aws serve` and to the real Go provider
# through the driver's client program, compared; tests/compat (not part of `make test`).
.PHONY: compat
compat: install $(DRIVERCLIENT) $(GOPROVIDER)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/compat

# The README's bench, fleet and compat tables, rewritten from bench/results, fleet/results and
# tests/compat/results (`make bench`, `make fleet` and `make compat` write only there).
.PHONY: readme-figures
readme-figures: install
	$(BIN)/python scripts/readme_figures.py
