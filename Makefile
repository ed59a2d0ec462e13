# Two commands for a newcomer: `make run` and `make test`. Only python3 is needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test demo lint bench clean

$(STAMP): pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)  ## the whole system on the embedded default (SQLite + filesystem broker)
	$(BIN)/tongfa serve

test: $(STAMP)  ## the whole suite
	$(BIN)/python -m pytest -q

demo: $(STAMP)  ## one release end to end, then exit
	$(BIN)/tongfa demo

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var
