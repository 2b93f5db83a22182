# One entry point for people, CI and the Dockerfile. `make quick` and `make test`
# install what they need first (once; reinstalled when the pins change).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp

.PHONY: install quick test lint bench lock clean

install: $(STAMP)

$(STAMP): scripts/install.sh constraints.txt pyproject.toml
	OPTIQ_VENV=$(VENV) bash scripts/install.sh
	touch $(STAMP)

## quick: the whole pipeline on Hopper-v5, preset quick (~7 min on 2 CPU cores)
quick: install
	$(PY) run_all.py

## test: lint and the test suite (~5 min on 2 CPU cores)
test: install
	$(PY) -m ruff check optiq scripts tests bench run_all.py
	$(PY) -m pytest -q tests

bench: install
	$(PY) bench/overhead.py

## lock: refresh constraints.txt from the current environment
lock:
	{ head -2 constraints.txt; $(PY) -m pip freeze | grep -viE '^(optiq|imitation|-e )' | sed 's/+cpu//'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) outputs
