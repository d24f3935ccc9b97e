# Two commands do everything (README.md): `make run` and `make test`.
#
# Variables (all optional):
#   PYTHON   the interpreter that builds .venv; default: the first of python3, python3.11,
#            python3.12, python3.13, python3.14 that is Python 3.11 or newer
#   INPUT    input folder (default: config/config.yaml's input_dir, the simulated demo)
#   RESULTS  results folder (default: results)
#   CONFIG   further config overrides, e.g. CONFIG="'nca={auc_method: linear}'"
#   CORES    cores for snakemake (default: all)
PYTHON ?= $(shell for p in python3 python3.11 python3.12 python3.13 python3.14; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
	&& { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
RESULTS ?= results
INPUT ?=
CONFIG ?=
LOCK := constraints.txt

SNAKEMAKE_CONFIG := --config results_dir=$(RESULTS) $(if $(INPUT),input_dir=$(INPUT)) $(CONFIG)

.PHONY: run report summary test test-slurm lint bench lock clean

# Installs come from the committed lock of exact versions (constraints.txt), so two labs
# get the same packages and the same numbers. `make lock` refreshes it.
define make_venv
	@test -n "$(PYTHON)" || { echo "ckpk needs Python 3.11 or newer: none of python3, \
python3.11 ... python3.14 is. Install one, or name it: make $@ PYTHON=/path/to/python3.12" >&2; \
	exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
endef

# The venv is rebuilt when pyproject.toml or the lock changes; a stamp records which extras.
$(VENV)/.installed-run: pyproject.toml $(LOCK)
	$(make_venv)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(LOCK)
	$(make_venv)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[test]"
	touch $@ $(VENV)/.installed-run

# The run ends with the lab's summary, which names the report written just after it
# (CKPK_REPORT); the report step itself is kept quiet so that the summary stays last.
run: $(VENV)/.installed-run
	CKPK_REPORT=$(RESULTS)/report.html $(BIN)/snakemake --cores $(CORES) $(SNAKEMAKE_CONFIG)
	@$(BIN)/snakemake --cores 1 $(SNAKEMAKE_CONFIG) --report $(RESULTS)/report.html --quiet all
	@test -s $(RESULTS)/report.html && echo "ckpk: report written to $(RESULTS)/report.html"

# The report of an earlier run, for any results folder: give the same INPUT/RESULTS/CONFIG.
report: $(VENV)/.installed-run
	$(BIN)/snakemake --cores 1 $(SNAKEMAKE_CONFIG) --report $(RESULTS)/report.html

summary: $(VENV)/.installed-run
	$(BIN)/ckpk summary $(RESULTS)

test: $(VENV)/.installed-test
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/ruff format --check src tests workflow/scripts benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# A real SLURM run: a one-node cluster started here, a small trial through the SLURM
# executor with workflow/profiles/slurm, every table compared with a local run
# (tests/slurm/run.sh). Needs root and Debian's slurm-wlm and munge, which it installs,
# so it is not part of `make test`; CI runs it.
test-slurm: $(VENV)/.installed-run
	PY=$(BIN)/python bash tests/slurm/run.sh

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/ruff format --check src tests workflow/scripts benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/popfit.py

# Refresh the lock: newest versions that pyproject.toml allows, resolved in a clean venv.
lock:
	@test -n "$(PYTHON)" || { echo "ckpk needs Python 3.11 or newer" >&2; exit 1; }
	rm -rf $(VENV)-lock
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install --quiet --upgrade pip
	$(VENV)-lock/bin/python -m pip install --quiet ".[test,slurm]"
	{ echo "# Exact versions for 'make run' and 'make test' (pip constraints)."; \
	  echo "# Refresh with 'make lock'; resolved with $$($(VENV)-lock/bin/python --version)."; \
	  $(VENV)-lock/bin/python -m pip freeze --exclude ckpk | LC_ALL=C sort -f; } > $(LOCK)
	rm -rf $(VENV)-lock build

clean:
	rm -rf results .snakemake demo build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
