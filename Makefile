# The two README commands: `make demo` and `make test`. Both set up
# everything they need (Debian packages as root, a venv, the package).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.sscard-installed

.PHONY: test demo bench lint typecheck unit setup clean

setup: $(STAMP)

$(PY):
	python3 -m venv $(VENV)

# Reinstall only when the project metadata changes (idempotent, quick 2nd run).
$(STAMP): pyproject.toml scripts/install-debian-deps.sh scripts/debian-packages.tsv | $(PY)
	@scripts/install-debian-deps.sh
	$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]' || scripts/install-without-pyscard.sh $(PY)
	@touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check sscard tests benchmarks examples
	$(VENV)/bin/ruff format --check sscard tests benchmarks examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(VENV)/bin/pytest -q

test: $(STAMP)
	@scripts/install-debian-deps.sh
	$(MAKE) --no-print-directory lint typecheck unit

demo: $(STAMP)
	$(PY) -m sscard.demo

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
