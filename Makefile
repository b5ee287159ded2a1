# The README's two commands: `make run` and `make test`. Everything they need they install themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= var
HTTP_PORT ?= 8000

# Debian packages the test suite talks to or renders with (real peers, not fakes):
# chromium for the UI tests, rsyslog and bsdutils (logger) for syslog, nftables and iproute2 for
# isolation in network namespaces, poppler-utils to read PDFs back, pango and fonts for WeasyPrint,
# fonts-liberation2 (Liberation Serif: the metrics of Decree 30/2020's Times New Roman, with the Vietnamese
# letters fonts-liberation 1.07 lacks; the Microsoft font needs the internet), clamav (clamscan) for the on-demand malware scan of the agent (its tests make their own signatures).
APT_TEST_PACKAGES := chromium rsyslog rsyslog-gnutls bsdutils nftables iproute2 poppler-utils \
	libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b fonts-dejavu-core fonts-noto-core fonts-liberation2 procps clamav
APT_RUN_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b fonts-dejavu-core fonts-noto-core fonts-liberation2

.PHONY: ui-deps
.PHONY: run test venv dev-venv system-deps-test system-deps-run lint typecheck pytest bench clean demo screenshots
.PHONY: opensearch opensearch-stop opensearch-cluster opensearch-cluster-stop

$(BIN)/.soclite-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e .
	touch $@

$(BIN)/.soclite-dev-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/.soclite-installed $@

venv: $(BIN)/.soclite-installed
dev-venv: $(BIN)/.soclite-dev-installed

system-deps-test:
	@bash scripts/apt-ensure.sh $(APT_TEST_PACKAGES)

# Front-end libraries of the UI come from npm at install time (never committed); the UI works without them.
dashboards/node_modules/.installed: dashboards/package.json dashboards/package-lock.json
	@if command -v npm >/dev/null; then npm --prefix dashboards ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the UI falls back to its own live-refresh poller" >&2; fi

ui-deps: dashboards/node_modules/.installed

system-deps-run:
	@bash scripts/apt-ensure.sh $(APT_RUN_PACKAGES)

run: venv system-deps-run ui-deps
	@bash scripts/run.sh "$(DATA_DIR)" "$(HTTP_PORT)"

lint: dev-venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check . || true

typecheck: dev-venv
	$(BIN)/mypy
	$(BIN)/lint-imports

pytest: dev-venv system-deps-test ui-deps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: dev-venv system-deps-test ui-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	@# A real OpenSearch node for the store, e2e and ISM tests (unless OPENSEARCH_URL names one), stopped at the end.
	bash scripts/with-opensearch.sh $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# A single-node OpenSearch from Maven Central (cached under ~/.cache/soclite/opensearch), left running
# for repeated `make test` runs; prints its URL. Needs mvn and a JDK 11-23.
opensearch:
	@bash scripts/opensearch.sh start

opensearch-stop:
	@bash scripts/opensearch.sh stop

# A throwaway three-node cluster of the same distribution (http 19201-19203, 320m heaps each); prints the
# URLs for store.opensearch_url. The cluster tests start their own, on free ports.
opensearch-cluster:
	@bash scripts/opensearch-cluster.sh start

opensearch-cluster-stop:
	@bash scripts/opensearch-cluster.sh stop

# The benchmarks behind the issues' targets (minutes each; not part of `make test`).
bench: dev-venv
	$(BIN)/python bench/correlator.py
	$(BIN)/python bench/store.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/e2e_latency.py
	$(BIN)/python bench/agent.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# docs/screenshots/: the analyst's pages (issue 15), the incident page, the overview's trend panel and page 1 of each document (issue 17),
# from a throw-away demo server driven by chromium (Playwright) and poppler's pdftoppm.
screenshots: dev-venv system-deps-test
	$(BIN)/python scripts/screenshots_analyst.py --out docs/screenshots
	$(BIN)/python scripts/screenshots_compliance.py --out docs/screenshots
