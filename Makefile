# SegOps: `make dev` runs the whole stack locally, `make test` runs every test against real components.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml sdk/python/pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install dev console test lint format bench load soak package checkov chromium clean replay migrate-secrets test-typescript-sdk typescript-sdk

$(STAMP): pyproject.toml sdk/python/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]' -e sdk/python
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# checkov pins many libraries of its own: it lives in its own venv so it never constrains ours.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

$(CHECKOV_STAMP):
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q 'checkov==$(CHECKOV_VERSION)'
	@rm -f $(CHECKOV_VENV)/.installed-* && touch $(CHECKOV_STAMP)

checkov: $(CHECKOV_STAMP)

# pip-audit likewise has its own venv; it audits .venv through PIPAPI_PYTHON_LOCATION (infra/audit.py).
AUDIT_VENV := .venv-audit
PIP_AUDIT_VERSION := 2.10.1
AUDIT_STAMP := $(AUDIT_VENV)/.installed-$(PIP_AUDIT_VERSION)

$(AUDIT_STAMP):
	@test -x $(AUDIT_VENV)/bin/python || $(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install -q 'pip-audit==$(PIP_AUDIT_VERSION)'
	@rm -f $(AUDIT_VENV)/.installed-* && touch $(AUDIT_STAMP)

# Known vulnerabilities in .venv and the TypeScript SDK's npm tree; SEGOPS_AUDIT=require fails when an
# advisory source is unreachable instead of reporting the scan as not run (infra/audit.py).
audit: install $(AUDIT_STAMP)
	cd sdk/typescript && npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python -m infra.audit

# The browser tests drive Debian's Chromium through Playwright (Playwright's own browser download is
# not used). Installed with apt-get when missing, which needs root (CI and these machines run as root).
CHROMIUM ?= /usr/bin/chromium

chromium:
	@test -x $(CHROMIUM) || { \
	  echo "make: $(CHROMIUM) is missing; installing Debian's chromium package (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# One deterministic source zip per manifest function under build/functions/ (for terraform/).
package: install
	$(BIN)/python -m infra.package

# The web console (console/): npm ci when the lockfile changes, a build when the lockfile or any source
# changes; the stamps are named by content hashes, so a checkout that only touches mtimes rebuilds nothing.
CONSOLE_SOURCES := $(shell find console/src console/public -type f 2>/dev/null | sort) \
  console/index.html console/package.json console/package-lock.json console/tsconfig.json console/vite.config.ts \
  console/.prettierrc.json console/.prettierignore
CONSOLE_DEPS_STAMP := console/node_modules/.installed-$(shell cat console/package-lock.json | sha1sum | cut -c1-12)
CONSOLE_STAMP := console/dist/.built-$(shell cat $(CONSOLE_SOURCES) | sha1sum | cut -c1-12)

$(CONSOLE_DEPS_STAMP): console/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "make: Node.js >= 20 and npm are required to build the console (console/)" >&2; exit 1; }
	cd console && npm ci --no-audit --no-fund --loglevel=error
	@rm -f console/node_modules/.installed-* && touch $(CONSOLE_DEPS_STAMP)

$(CONSOLE_STAMP): $(CONSOLE_DEPS_STAMP) $(CONSOLE_SOURCES)
	cd console && npm run --silent build
	@rm -f console/dist/.built-* && touch $(CONSOLE_STAMP)

console: $(CONSOLE_STAMP)

dev: install console
	$(BIN)/python -m segops.devserver

# pytest on one worker process per core, at most four: each worker has its own chDB directory and
# its own real servers (~1.3 GB). A worker that runs out of tests takes some queued on a busy one
# (worksteal), so the few long tests do not leave the other worker idle. TEST_WORKERS=0 runs the
# suite in one process.
TEST_WORKERS ?= auto
test: install checkov chromium typescript-sdk console
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest --numprocesses $(TEST_WORKERS) --maxprocesses 4 --dist worksteal
	$(MAKE) --no-print-directory test-typescript-sdk
	$(MAKE) --no-print-directory audit

# The TypeScript SDK built (sdk/typescript/dist): the browser-ingestion test serves it to Chromium.
typescript-sdk:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
	  echo "make test: Node.js >= 20 and npm are required to test the TypeScript SDK (sdk/typescript)" >&2; exit 1; }
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || { \
	  echo "make test: the TypeScript SDK needs Node.js >= 20, found $$(node --version)" >&2; exit 1; }
	cd sdk/typescript && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

# The TypeScript SDK: unit tests, then end-to-end against the real stack (needs the .venv above).
test-typescript-sdk: install typescript-sdk
	cd sdk/typescript && npm test

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# Mixed traffic against the dev stack (started on port 18250, or LOAD_ARGS="--url ..."; loopback only):
# steps the rate up to the highest with p99 < 500 ms, then 60 s at it; checks sent == stored. Bounded
# in time and requests, stops by itself (benchmarks/load.py, docs/operations.md § Load and soak).
load: install
	$(BIN)/python -m benchmarks.load $(LOAD_ARGS)

# 10 minutes at a fixed rate: the server's RSS and open file descriptors at start and end.
soak: install
	$(BIN)/python -m benchmarks.load --soak $(LOAD_ARGS)

# Re-drive dead letters, each exactly once: make replay TOPIC=events SINCE=2026-01-31T22:00 [TENANT=7]
replay: install
	$(BIN)/python -m segops.ops replay --topic $(TOPIC) --since $(SINCE) $(if $(TENANT),--tenant $(TENANT))

# Move the connector and Shopify secrets earlier versions kept in the store into the tenant-secret
# backend, each once (docs/deploy.md, Updating): make migrate-secrets [TENANT=7] [DRY_RUN=1]
migrate-secrets: install
	$(BIN)/python -m segops.ops secrets migrate $(if $(TENANT),--tenant $(TENANT)) $(if $(DRY_RUN),--dry-run)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(AUDIT_VENV) .segops build dist console/node_modules console/dist sdk/typescript/node_modules sdk/typescript/dist sdk/typescript/build
