# The two commands: `make run` (whole pipeline on embedded defaults) and `make test`.
# Both create .venv, install the pinned dependencies and fetch the jars on first use;
# later runs reuse them (set-up is skipped unless constraints.txt, setup.cfg or the pom change).

PYTHON    ?= python3.11
VENV      := .venv
BIN       := $(VENV)/bin
STAMPS    := .stamps
RISKCTL   := $(BIN)/riskctl
CUSTOMERS ?= 20000
SEED      ?= 42
BENCH_ROWS      ?= 1000000
BENCH_CUSTOMERS ?= $(CUSTOMERS)
BENCH_CUSTOMERS_LARGE ?= 100000
BENCH_SCALING ?= 20000,100000
BENCH_MODEL_ROWS ?= 5000,50000
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup system venv jars run test test-fast lint format bench bench-scaling bench-service bench-startup bench-workbench bench-models mlflow-ui notebook airflow-standalone \
        tables clean clean-data constraints

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-20s %s\n", $$1, $$2}'

$(STAMPS)/venv: constraints.txt setup.cfg setup.py pyproject.toml
	@mkdir -p $(STAMPS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

$(STAMPS)/maven: infra/maven/pom.xml
	@mkdir -p $(STAMPS)
	rm -rf jars
	mvn --batch-mode --quiet -f infra/maven/pom.xml dependency:copy-dependencies
	@touch $@

# The project's own UDF jar (infra/jvm: the bronze cipher in the JVM), compiled against
# the venv's PySpark; rebuilt when its sources, PySpark or the jars folder change.
$(STAMPS)/jars: $(STAMPS)/maven $(STAMPS)/venv infra/jvm/build.sh $(wildcard infra/jvm/src/*/*/*/*/*.java)
	bash infra/jvm/build.sh $(BIN)/python jars
	@touch $@

# Spark's classes as a driver holds them once loaded (riskcontrol.core.classcache): later
# drivers map the archive instead of loading them, a quarter less CPU to start and run a
# first job. Beside the jars it was made for: `make jars` recreates both.
$(STAMPS)/classcache: $(STAMPS)/jars riskcontrol/core/classcache.py
	$(BIN)/python -m riskcontrol.core.classcache jars
	@touch $@

# The benchmark's peers (DuckDB, Polars): the bench extra, installed on first `make bench`.
$(STAMPS)/bench: $(STAMPS)/venv
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,bench]'
	@touch $@

system: ## OS packages the tests need (PostgreSQL, Chromium, a CJK font), as root or sudo
	bash infra/ci/setup-system.sh

venv: $(STAMPS)/venv ## create .venv and install pinned dependencies
jars: $(STAMPS)/jars ## fetch Delta and JDBC jars from Maven Central into ./jars; build the UDF jar
setup: venv jars $(STAMPS)/classcache ## everything run and test need

run: setup ## run the whole pipeline on embedded defaults (CUSTOMERS=20000 SEED=42)
	$(RISKCTL) run --customers $(CUSTOMERS) --seed $(SEED)

# The Scrapy tests run in an interpreter of their own: importing Twisted leaves a zope
# descriptor on typing.Generic that breaks Spark ML's param copying in the same process.
SCRAPY_TESTS := tests/test_crawlers.py

# Two pytest workers, a test file each at a time (--dist loadfile keeps a module's fixtures,
# e.g. the end-to-end book, in one worker): Spark on small data waits on scheduling more
# than on the CPU, so two sessions side by side finish sooner on 2 cores. Modules go out
# in collection order (tests/conftest.py puts the end-to-end book first), not by size.
XDIST := -n 2 --dist loadfile --no-loadscope-reorder

test: system setup ## run every test (pytest); installs the OS packages it needs
	$(BIN)/pytest $(XDIST) --durations=15 --ignore=$(SCRAPY_TESTS) $(PYTEST_ARGS)
	$(BIN)/pytest $(SCRAPY_TESTS) $(PYTEST_ARGS)

test-fast: system setup ## the tests without the slow end-to-end ones
	$(BIN)/pytest $(XDIST) -m "not slow" --ignore=$(SCRAPY_TESTS) $(PYTEST_ARGS)
	$(BIN)/pytest -m "not slow" $(SCRAPY_TESTS) $(PYTEST_ARGS)

lint: venv ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv ## ruff format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup $(STAMPS)/bench ## ingest-file vs plain PySpark, DuckDB, Polars, pandas (BENCH_ROWS=1000000), the pipeline (BENCH_CUSTOMERS=20000), collect + analyze (BENCH_CUSTOMERS_LARGE=100000)
	$(BIN)/python infra/benchmark.py --peers $(BENCH_ROWS)
	$(BIN)/python infra/benchmark.py --customers $(BENCH_CUSTOMERS) --seed $(SEED)
	$(BIN)/python infra/benchmark.py --customers $(BENCH_CUSTOMERS_LARGE) --seed $(SEED) --analyze-only

bench-scaling: setup ## each stage's time per book size and its growth exponent (BENCH_SCALING=20000,100000)
	$(BIN)/python infra/benchmark.py --scaling $(BENCH_SCALING) --seed $(SEED)

bench-service: setup ## load-test riskctl serve on loopback: 200 decisions/s for 60 s, then rising rates (needs make run first)
	$(BIN)/python infra/bench_service.py

bench-startup: setup ## a Spark driver's start and first Delta jobs, with the class archive and without (5 runs each)
	$(BIN)/python infra/bench_startup.py --runs 5

bench-workbench: setup ## time the workbench's dashboard and review queue on journals of 100k and 1M decisions
	$(BIN)/python infra/bench_workbench.py --decisions 100000,1000000

bench-models: setup ## every model kind vs scikit-learn references on generated messy loan files (BENCH_MODEL_ROWS=5000,50000)
	$(BIN)/python infra/bench_models.py --rows $(BENCH_MODEL_ROWS)

tables: venv ## list every table with row count and Delta version
	$(RISKCTL) tables

mlflow-ui: venv ## MLflow UI on http://127.0.0.1:5000 over the local tracking store
	$(RISKCTL) mlflow-ui

notebook: setup ## JupyterLab on http://127.0.0.1:8888 over notebooks/, the project's environment as its kernel
	$(RISKCTL) notebook

airflow-standalone: venv ## Airflow (api-server, scheduler, dag-processor) with this project's DAGs
	$(RISKCTL) airflow standalone

constraints: ## re-resolve pinned versions from setup.cfg into constraints.txt
	rm -rf /tmp/riskcontrol-resolve && $(PYTHON) -m venv /tmp/riskcontrol-resolve
	/tmp/riskcontrol-resolve/bin/pip install --quiet '.[dev]'
	{ echo "# Pinned versions of every Python package, resolved together on Python 3.11."; \
	  echo "# Regenerate after changing requirements in setup.cfg: make constraints"; \
	  /tmp/riskcontrol-resolve/bin/pip freeze --exclude-editable | grep -v '^riskcontrol'; } > constraints.txt

clean-data: ## delete generated data, the lakehouse, MLflow and Airflow state
	rm -rf lakehouse data mlflow.db mlartifacts .airflow reports spark-warehouse .derby

clean: clean-data ## also delete .venv and jars
	rm -rf $(VENV) jars $(STAMPS)
