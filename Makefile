# Every target works on a fresh clone: the virtual environment is created when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint dev bench install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/agent-analytics demo

# Test files run on up to 4 processes (one per core), a file's tests together in one of them
# (they share module fixtures); the 25 slowest tests are listed at the end.
test: $(STAMP)
	$(BIN)/python -m pytest --numprocesses=auto --maxprocesses=4 --dist=loadfile --durations=25

lint: $(STAMP)
	$(BIN)/sqlfluff lint dbt_project
	$(BIN)/ruff check .

dev: $(STAMP)
	$(BIN)/agent-analytics dev

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf analytics_home dbt_project/target dbt_project/target-* dbt_project/logs .pytest_cache
