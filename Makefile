# Helm: every job has one definition here; CI, hooks and the README call these targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SRC    := shared services tests bench scripts
WEB       := services/gateway/web
DASHBOARD := services/gateway/static/vendor/VERSIONS.json

.PHONY: help install run up down test test-unit test-integration test-e2e test-faults test-fuzz lint typecheck format bench soak clean dashboard test-deps

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) $(DASHBOARD) ## create the virtual environment and install Helm with its dev tools

$(DASHBOARD): $(WEB)/package-lock.json $(WEB)/build.mjs
	cd $(WEB) && npm ci --no-audit --no-fund && node build.mjs

dashboard: $(DASHBOARD) ## vendor the dashboard's npm assets (uPlot) into services/gateway/static/vendor

test-deps: ## Debian's chromium and prometheus for the e2e tests (installed only when missing)
	@command -v chromium >/dev/null && command -v prometheus >/dev/null || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium prometheus; }

run: install ## start the embedded stack (broker, Redis, all services) and print the dashboard URL
	$(BIN)/helmctl up

up: ## the production-shaped stack with Docker Compose
	docker compose up -d --build

down: ## stop the Docker Compose stack
	docker compose down

test: install test-deps ## the whole test suite against a real broker and Redis
	$(BIN)/python -m pytest tests -p no:cacheprovider

test-unit: install ## unit tests only (no I/O)
	$(BIN)/python -m pytest tests/unit -p no:cacheprovider

test-integration: install ## integration tests on the embedded broker and Redis
	$(BIN)/python -m pytest tests/integration -p no:cacheprovider

test-e2e: install ## the whole stack as processes
	$(BIN)/python -m pytest tests/e2e -p no:cacheprovider

test-faults: install ## the fault suite: services killed, Redis and the broker restarted, a hung worker
	$(BIN)/python -m pytest tests/faults -p no:cacheprovider

test-fuzz: install ## bad input, fuzzed: every consumed topic and the REST API (HELM_FUZZ_EXAMPLES, HELM_FUZZ_HTTP_EXAMPLES, HELM_FUZZ_SEED for longer hunts)
	$(BIN)/python -m pytest tests/fuzz -p no:cacheprovider

lint: install ## ruff, formatting and the import boundaries
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)
	$(BIN)/lint-imports

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix $(SRC)
	$(BIN)/ruff format $(SRC)

typecheck: install ## mypy --strict
	$(BIN)/mypy shared/helix shared/helm services tests bench scripts

bench: install ## benchmarks, each beside its baseline in one run
	$(BIN)/python -m bench

soak: install ## a 10-minute sustained load on the whole stack (not in CI); report in bench/results/soak.md
	$(BIN)/python -m bench.soak --minutes $${SOAK_MINUTES:-10} --agents $${SOAK_AGENTS:-100} --rate $${SOAK_RATE:-2000}

clean: ## remove the virtual environment and run files
	rm -rf $(VENV) .helm
