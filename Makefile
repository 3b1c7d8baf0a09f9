# Hands-on PyTorch: `make book` builds the HTML book, `make test` runs every test.
# `make book` uses a light venv ($(BOOK_VENV): jupyter-book, no torch); everything
# else uses $(VENV), which has torch and all the test tools. Each target creates or
# refreshes its venv first. Without make (Windows): see book/running.md.

PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
BOOK_VENV   ?= .venv-book
BOOK_BIN    := $(BOOK_VENV)/bin
CONSTRAINTS ?= constraints.txt
PIP_FLAGS   := $(if $(strip $(CONSTRAINTS)),-c $(CONSTRAINTS))
# No progress bars; no byte-compiling by pip (the venv target compiles once, in parallel).
PIP_INSTALL := -m pip install --quiet --progress-bar off --no-compile
STAMP       := $(VENV)/.installed
BOOK_STAMP  := $(BOOK_VENV)/.installed
# One thread per notebook kernel: two kernels share the 2 cores instead of fighting.
# TORCHINDUCTOR_VEC_ISA_OK=1 skips torch.compile's probe of which vector instructions the
# C++ compiler can build (about 17 s in a fresh environment); kernels are still compiled.
TEST_ENV    := D2LMINI_PROFILE=smoke OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg \
               TORCHINDUCTOR_VEC_ISA_OK=1
WORKERS     ?= 2
PROFILE     ?= laptop
NB          ?= chapters

.PHONY: help venv book-venv book pdf test unit lint notebooks lab execute run-times bench \
        lenet-study part4-study part4-plain-study clean gpu-data gpu-check test-oldest

help:  ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(STAMP)  ## create or refresh .venv (torch, jupyter-book, test tools, d2lmini)

$(STAMP): requirements.txt requirements-book.txt pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || { echo "==> creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> $(VENV): installing requirements.txt (torch, jupyter-book, test tools)"
	$(BIN)/python $(PIP_INSTALL) -r requirements.txt $(PIP_FLAGS)
	@echo "==> $(VENV): installing d2lmini in editable mode"
	$(BIN)/python $(PIP_INSTALL) --no-build-isolation --no-deps -e .
	@echo "==> $(VENV): byte-compiling (where PYTHONDONTWRITEBYTECODE is set, Python"
	@echo "    would otherwise compile torch at every start: 5.5 s instead of 2 s)"
	@$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null || true  # a few packages ship unparsable templates
	@touch $@

book-venv: $(BOOK_STAMP)  ## create or refresh .venv-book (jupyter-book only)

$(BOOK_STAMP): requirements-book.txt
	@test -x $(BOOK_BIN)/python || { echo "==> creating $(BOOK_VENV)"; $(PYTHON) -m venv $(BOOK_VENV); }
	@echo "==> $(BOOK_VENV): installing requirements-book.txt (jupyter-book, MathJax; no torch)"
	$(BOOK_BIN)/python $(PIP_INSTALL) -r requirements-book.txt
	@touch $@

# The book shows the outputs stored in the notebooks: nothing is executed.
book: $(BOOK_STAMP)  ## build the HTML book from the stored outputs
	@echo "==> building the HTML book (warnings are errors)"
	$(BOOK_BIN)/jupyter-book build . --path-output book -W -n --keep-going
	@echo "Book: $(CURDIR)/book/_build/html/index.html"

# One PDF of the whole book, offline: Sphinx's single-page HTML printed by the system
# Chromium (Debian's chromium; jupyter-book's pdfhtml needs pyppeteer, which downloads
# its own Chromium). The virtual time budget lets MathJax typeset before printing.
CHROMIUM ?= chromium
pdf: $(BOOK_STAMP)  ## the whole book as one PDF (book/_build/book.pdf), needs chromium
	$(BOOK_BIN)/jupyter-book build . --path-output book --builder singlehtml -n --keep-going
	@# the page sits in book/ but links _static/ and _images/ as if it were at the root
	cp book/_build/singlehtml/book/intro.html book/_build/singlehtml/book.html
	$(CHROMIUM) --headless --no-sandbox --disable-gpu --no-pdf-header-footer \
	    --virtual-time-budget=60000 --print-to-pdf=book/_build/book.pdf \
	    book/_build/singlehtml/book.html
	@echo "PDF: $(CURDIR)/book/_build/book.pdf"

DEV_STAMP := $(VENV)/.dev-installed
$(DEV_STAMP): requirements-dev.txt $(STAMP)
	$(BIN)/python $(PIP_INSTALL) -r requirements-dev.txt
	@touch $@

lint: $(DEV_STAMP)  ## ruff format --check, ruff check, mypy on d2lmini, codespell
	$(BIN)/ruff format --check d2lmini tests tools bench conftest.py
	$(BIN)/ruff check d2lmini tests tools bench conftest.py
	$(BIN)/mypy
	$(BIN)/codespell README.md CONTRIBUTING.md book d2lmini tests tools bench

test: venv  ## the whole test suite: unit tests, book, browser, every notebook
	$(TEST_ENV) $(BIN)/python -m pytest tests chapters -n $(WORKERS) --dist loadfile -q

unit: venv  ## the unit tests of d2lmini and tools only
	$(TEST_ENV) $(BIN)/python -m pytest tests -q

notebooks: venv  ## run every notebook in the smoke profile
	$(TEST_ENV) $(BIN)/python -m pytest chapters -n $(WORKERS) --dist loadfile -q

lab: venv  ## install JupyterLab into .venv and open the chapters
	$(BIN)/python $(PIP_INSTALL) jupyterlab
	$(BIN)/jupyter lab chapters

# Re-run notebooks top to bottom and store their outputs (PROFILE=laptop or full),
# then refresh the table of run times that the book's introduction shows.
execute: venv  ## re-run notebooks, store outputs (PROFILE=laptop, NB=path)
	$(BIN)/python tools/run_notebooks.py --profile $(PROFILE) $(NB)
	$(BIN)/python tools/run_times.py

run-times: venv  ## regenerate the run-time table of the introduction
	$(BIN)/python tools/run_times.py

# d2l is our reference peer, not a dependency: its exact pins break installs.
bench: venv  ## LeNet epoch benchmark of the data pipelines
	$(BIN)/python $(PIP_INSTALL) --no-deps d2l==1.0.3
	$(BIN)/python $(PIP_INSTALL) pandas scipy $(PIP_FLAGS)
	$(BIN)/python bench/bench_lenet_epoch.py

# The LeNet chapter's per-seed numbers: learning rates chosen on a validation split,
# then test accuracy for 3 seeds (bench/lenet_study.md; runs are cached in bench/_cache).
lenet-study: venv  ## the LeNet chapter's learning-rate study (hours)
	nice -n 10 $(BIN)/python bench/lenet_study.py

clean:  ## remove the venvs and the built book
	rm -rf book/_build build $(VENV) $(BOOK_VENV) $(OLDEST_VENV)

# Part IV's laptop recipes: peak learning rates chosen on a validation split, then test
# accuracy for 3 seeds (bench/part4_study.md; finished runs are kept in its JSON).
part4-study: venv  ## Part IV's recipe study (hours)
	$(BIN)/python bench/part4_study.py

part4-plain-study: venv  ## Part IV's first-edition (plain recipe) study (hours)
	nice -n 10 $(BIN)/python bench/part4_plain_study.py

# A short check of the book on a GPU machine (tools/gpu_check.py): `make gpu-data` copies
# Fashion-MNIST into data/ (ignored by git; carry it to the machine), then on the GPU
# machine, whose own torch is used, `make gpu-check`. In CI: `make gpu-check DEVICE=cpu`
# runs the same runner with the .venv on the CPU, in the smoke profile.
DEVICE        ?= cuda
GPU_CHECK_OUT ?= build/gpu_check
gpu-data: venv  ## copy Fashion-MNIST into data/ for a GPU machine
	$(BIN)/python -c "import d2lmini; d2lmini.prepare_fashion_mnist('data')"

gpu-check: $(if $(filter cpu,$(DEVICE)),venv)  ## the GPU check (DEVICE=cpu: on the CPU, smoke)
	$(if $(filter cpu,$(DEVICE)),$(TEST_ENV) $(BIN)/python,python3) tools/gpu_check.py \
	    --device $(DEVICE) --out $(GPU_CHECK_OUT)

# The lowest bounds of requirements.txt, tested: a separate venv with each `>=X.Y` pinned
# to the oldest series X.Y.* (tools/oldest_requirements.py: torch>=2.14 -> 2.14.*, with
# its torchvision), then the unit tests and the notebooks of Parts I-III in `smoke`.
# Not part of `make test` or CI: PyPI's Linux torch wheels bring their CUDA libraries
# (several GB). The last run is recorded in CONTRIBUTING.md ("Version bounds").
OLDEST_VENV  ?= .venv-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.installed
OLDEST_NB    ?= chapters/part1_by_example chapters/part2_computation chapters/part3_cnn
# Tests that need the book's tools, a browser, the network or a second venv.
OLDEST_SKIP  := --ignore=tests/test_book.py --ignore=tests/test_browser.py \
                --ignore=tests/test_d2l_parity.py --ignore=tests/test_bare_venv.py

$(OLDEST_STAMP): requirements.txt pyproject.toml tools/oldest_requirements.py
	@test -x $(OLDEST_VENV)/bin/python || { echo "==> creating $(OLDEST_VENV)"; $(PYTHON) -m venv $(OLDEST_VENV); }
	$(PYTHON) tools/oldest_requirements.py requirements.txt > $(OLDEST_VENV)/oldest.txt
	@echo "==> $(OLDEST_VENV): installing the lowest bounds:" $$(cat $(OLDEST_VENV)/oldest.txt)
	$(OLDEST_VENV)/bin/python $(PIP_INSTALL) -r $(OLDEST_VENV)/oldest.txt pyyaml
	$(OLDEST_VENV)/bin/python $(PIP_INSTALL) --no-deps -e .
	@touch $@

test-oldest: $(OLDEST_STAMP)
	$(OLDEST_VENV)/bin/python -m pip list 2>/dev/null | grep -E -i "^(torch|torchvision|numpy|matplotlib|tqdm) "
	$(TEST_ENV) $(OLDEST_VENV)/bin/python -m pytest tests $(OLDEST_NB) $(OLDEST_SKIP) \
	    -n $(WORKERS) --dist loadfile -q
