# reid_jax: `make demo` (train + evaluate on synthetic data) and `make test` (lint, recipe cards, tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_DIR ?= $(CURDIR)/data/tfds
DEMO_DIR ?= runs/demo

.PHONY: venv demo test lint clean

$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@! $(PY) -c "import tensorflow" 2>/dev/null || (echo "tensorflow got installed: check requirements" && false)
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	TFDS_DATA_DIR=$(DATA_DIR) $(PY) -m reid_jax.data.build synthetic_persons/default
	TFDS_DATA_DIR=$(DATA_DIR) $(PY) -m reid_jax.main --config experiments/bot.py:synthetic --workdir $(DEMO_DIR)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m reid_jax.recipes check
	$(PY) -m pytest -n 2 --dist loadfile tests

clean:
	rm -rf $(VENV) runs data
