# Two commands do all set-up on a fresh machine: `make scan` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: scan test weights clean

$(BIN)/fragscan: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[test]'
	touch $@

scan: $(BIN)/fragscan  ## scan the embedded default (digits-cnn on digits) into runs/default/
	HF_HUB_OFFLINE=1 $(BIN)/fragscan scan --out runs/default

test: $(BIN)/fragscan  ## the test suite
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

weights: $(BIN)/fragscan  ## regenerate the embedded default's weights (deterministic on CPU)
	$(BIN)/python scripts/make_digits_weights.py

clean:
	rm -rf runs .pytest_cache
