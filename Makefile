# Hands-on PyTorch: `make book` builds the HTML book, `make test` runs every test.
# Both create or refresh the virtualenv in $(VENV) first.

PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
CONSTRAINTS ?= constraints.txt
PIP_FLAGS   := $(if $(strip $(CONSTRAINTS)),-c $(CONSTRAINTS))
STAMP       := $(VENV)/.installed
# One thread per notebook kernel: two kernels share the 2 cores instead of fighting.
TEST_ENV    := D2LMINI_PROFILE=smoke OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg
WORKERS     ?= 2
PROFILE     ?= laptop
NB          ?= chapters

.PHONY: venv book test unit notebooks lab execute bench clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt $(PIP_FLAGS)
	$(BIN)/python -m pip install --quiet --no-build-isolation --no-deps -e .
	@touch $@

book: venv
	$(BIN)/jupyter-book build . --path-output book -W -n --keep-going
	@echo "Book: $(CURDIR)/book/_build/html/index.html"

test: venv
	$(TEST_ENV) $(BIN)/python -m pytest tests chapters -n $(WORKERS) --dist loadfile -q

unit: venv
	$(TEST_ENV) $(BIN)/python -m pytest tests -q

notebooks: venv
	$(TEST_ENV) $(BIN)/python -m pytest chapters -n $(WORKERS) --dist loadfile -q

lab: venv
	$(BIN)/python -m pip install --quiet jupyterlab
	$(BIN)/jupyter lab chapters

# Re-run notebooks top to bottom and store their outputs (PROFILE=laptop or full).
execute: venv
	$(BIN)/python tools/run_notebooks.py --profile $(PROFILE) $(NB)

# d2l is our reference peer, not a dependency: its exact pins break installs.
bench: venv
	$(BIN)/python -m pip install --quiet --no-deps d2l==1.0.3
	$(BIN)/python -m pip install --quiet pandas scipy $(PIP_FLAGS)
	$(BIN)/python bench/bench_lenet_epoch.py

clean:
	rm -rf book/_build $(VENV)
