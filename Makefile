# One entry point for people, CI and the Dockerfile. `make quick` and `make test`
# install what they need first (once; reinstalled when the pins change).
# The venv is $(VENV): OPTIQ_VENV when set (the Docker image sets /opt/venv), else .venv;
# OPTIQ_VENV=system means the current python3, as for scripts/install.sh.
VENV ?= $(or $(OPTIQ_VENV),.venv)
ifeq ($(VENV),system)
PY := python3
STAMP := .install-stamp
else
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
endif

.PHONY: install quick test lint bench lock clean image-check

install: $(STAMP)

$(STAMP): scripts/install.sh constraints.txt pyproject.toml
	OPTIQ_VENV=$(VENV) bash scripts/install.sh
	touch $(STAMP)

## quick: the whole pipeline on Hopper-v5, preset quick, 3 seeds (~12 min on 2 CPU cores); ARGS="..." adds flags
quick: install
	$(PY) run_all.py $(ARGS)

## test: lint and the test suite (~10 min on 2 CPU cores)
test: install
	$(PY) -m ruff check optiq scripts tests bench run_all.py
	$(PY) -m pytest -q tests

bench: install
	$(PY) bench/overhead.py

## lock: refresh constraints.txt from the current environment
lock:
	{ head -2 constraints.txt; $(PY) -m pip freeze | grep -viE '^(optiq|imitation|-e )' | sed 's/+cpu//'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

## image-check: build the CPU image with docker or podman, run a tiny pipeline and `make test` in it
image-check:
	bash scripts/image_check.sh

clean:
	rm -rf $(if $(filter system,$(VENV)),$(STAMP),$(VENV)) outputs
