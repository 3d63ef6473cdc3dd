# hdnnp-handson: the two commands a newcomer needs are `make lab` and `make test`; both set up .venv themselves.
#
#   make lab             set up .venv (first time only) and start JupyterLab on notebooks/ (prints the URL)
#   make test            set up .venv, then ruff + unit tests + every notebook under nbval in quick mode
#   make notebooks       execute every notebook in full mode, in place (the committed outputs), with timings
#   make workshop-check  execute every notebook in MODE=quick (or MODE=full), print a timing table and write
#                        benchmarks/notebook_timings.md; notebooks are not modified
#
# Variables: PYTHON (interpreter for the venv, >= 3.10), PORT (JupyterLab, default 8888), MODE (workshop-check),
# JOBS (notebooks and workshop-check: notebooks run side by side, one per free core; default 1),
# TORCH_INDEX_URL (install torch from this index first, e.g. https://download.pytorch.org/whl/cpu).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8888
MODE ?= quick
JOBS ?= 1
LAB_ARGS ?=
TORCH_INDEX_URL ?=
PIP := $(BIN)/python -m pip
PIP_FLAGS ?= -qq --progress-bar off

# No NVIDIA GPU (no working nvidia-smi) -> pin torch to the CPU build with constraints.txt, never pull CUDA wheels.
HAS_NVIDIA_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)
ifeq ($(HAS_NVIDIA_GPU),yes)
  CONSTRAINTS :=
else
  CONSTRAINTS := -c constraints.txt
endif

# The stamp's name carries a hash of everything that decides what is installed: editing requirements.txt,
# constraints.txt or pyproject.toml (or gaining a GPU) re-runs the install; otherwise set-up takes no time.
DEPS_HASH := $(shell cat requirements.txt constraints.txt pyproject.toml 2>/dev/null | { cat; echo "$(CONSTRAINTS)"; } \
               | sha256sum | cut -c1-16)
STAMP := $(VENV)/.hdnnp-installed-$(DEPS_HASH)
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))

.PHONY: help setup lab test lint unit nbval notebooks workshop-check sync-notebooks clean-venv

help:
	@sed -n '1,11p' Makefile | sed 's/^# \{0,1\}//'

setup: $(STAMP)

$(STAMP):
	@if [ ! -x "$(BIN)/python" ]; then \
	  $(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 is needed, found " + sys.version.split()[0] + ": run make PYTHON=python3.11 (or newer)")' \
	  && echo "Creating $(VENV) with $$($(PYTHON) --version)" && $(PYTHON) -m venv $(VENV); fi
	@echo "Installing dependencies into $(VENV) (torch: $(if $(CONSTRAINTS),CPU build pinned by constraints.txt,default build: NVIDIA GPU found)) ..."
	@if [ -n "$(TORCH_INDEX_URL)" ]; then $(PIP) install $(PIP_FLAGS) $(CONSTRAINTS) --index-url "$(TORCH_INDEX_URL)" torch; fi
	@if [ -n "$(CONSTRAINTS)" ]; then \
	  $(PIP) install $(PIP_FLAGS) --dry-run --report $(VENV)/pip-resolution.json $(CONSTRAINTS) -r requirements.txt \
	  && $(BIN)/python -c "$$NO_CUDA_CHECK" $(VENV)/pip-resolution.json; fi
	$(PIP) install $(PIP_FLAGS) $(CONSTRAINTS) -r requirements.txt
	$(PIP) install $(PIP_FLAGS) $(CONSTRAINTS) --no-deps --editable .
	@rm -f $(VENV)/.hdnnp-installed-*
	@touch $@
	@echo "Environment ready in $(VENV): torch $$($(BIN)/python -c 'from importlib.metadata import version; print(version("torch"))')"

# Reads pip's resolution report and stops before anything CUDA-related is downloaded on a machine without a GPU.
define NO_CUDA_CHECK
import json, sys
report = json.load(open(sys.argv[1]))
picked = [(i["metadata"]["name"], i["metadata"]["version"]) for i in report["install"]]
# nvidia-ml-py / nvidia-ml-py3 (pynvml, pulled by chgnet) are small pure-Python NVML bindings, not CUDA.
cuda = lambda n: n.startswith(("nvidia-", "triton")) and not n.startswith("nvidia-ml-py")
bad = [f"{n}=={v}" for n, v in picked if cuda(n.lower()) or (n.lower() == "torch" and "+cu" in v)]
torch = [v for n, v in picked if n.lower() == "torch"]
if bad:
    sys.exit("Refusing to install CUDA packages on a machine without an NVIDIA GPU: " + ", ".join(bad) + "\n"
             "pip cannot see a CPU build of torch. Run: make TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu lab")
print("pip resolution checked: torch " + (torch[0] if torch else "(already satisfied)") + ", no CUDA packages")
endef
export NO_CUDA_CHECK

lab: setup
	@echo "Starting JupyterLab on notebooks/ (stop it with Ctrl+C). Open the http://127.0.0.1:$(PORT)/lab?token=... URL below."
	$(BIN)/jupyter lab --no-browser --ServerApp.root_dir=notebooks --ServerApp.port=$(PORT) \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# make test: every step runs, and the target fails if any of them failed.
test: setup
	@status=0; \
	echo "== ruff =="; $(BIN)/ruff check . || status=1; \
	echo "== unit tests =="; $(BIN)/python -m pytest tests || status=1; \
	if [ -n "$(NOTEBOOKS)" ]; then \
	  echo "== notebooks (nbval, quick mode) =="; \
	  HDNNP_QUICK=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=900 \
	    -p no:cacheprovider $(NOTEBOOKS) || status=1; \
	else echo "== notebooks: none in notebooks/ yet =="; fi; \
	exit $$status

lint: setup
	$(BIN)/ruff check .

unit: setup
	$(BIN)/python -m pytest tests

nbval: setup
	@if [ -z "$(NOTEBOOKS)" ]; then echo "No notebooks in notebooks/."; else \
	  HDNNP_QUICK=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=900 \
	    -p no:cacheprovider $(NOTEBOOKS); fi

notebooks: setup
	$(BIN)/python scripts/sync_notebooks.py
	$(BIN)/python scripts/run_notebooks.py --mode full --inplace --jobs $(JOBS)

workshop-check: setup
	$(BIN)/python scripts/run_notebooks.py --mode $(MODE) --jobs $(JOBS)

sync-notebooks: setup
	$(BIN)/python scripts/sync_notebooks.py

clean-venv:
	rm -rf $(VENV)
