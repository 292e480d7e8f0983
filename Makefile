# `make run`: create .venv on first use, then train PPO on CartPole-v1 with 8 vmapped seeds.
# `make test`: create .venv on first use, then run the whole test suite (unit, learning, notebooks).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

# XLA's CPU concurrency-optimised scheduler can wedge big vmapped programs on small CPUs (see README,
# "Known limitations"); tests and CI switch it off. User runs are left alone.
TEST_XLA_FLAGS := --xla_cpu_enable_concurrency_optimized_scheduler=false
# Two pytest workers, one per core (tests/conftest.py switches off XLA's intra-op thread pool); a test file stays
# on one worker so that its module fixtures (compiled programs) are built once.
TEST_WORKERS ?= 2

.PHONY: run test lint clean reference-env

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/purerl train ppo --env CartPole-v1 --num-seeds 8

test: $(STAMP)
	PURERL_NOTEBOOK_SMOKE=1 XLA_FLAGS="$(TEST_XLA_FLAGS) $(XLA_FLAGS)" JAX_PLATFORMS=cpu $(VENV)/bin/python -m pytest tests notebooks --nbmake -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check purerl tests benchmarks notebooks

# `make reference-env`: the separate venv the authors' code runs in for benchmarks/reference (PyTorch CPU).
REFERENCE_VENV := benchmarks/reference/.venv
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

$(REFERENCE_VENV)/.installed: benchmarks/reference/requirements.txt
	test -x $(REFERENCE_VENV)/bin/python || $(PYTHON) -m venv $(REFERENCE_VENV)
	$(REFERENCE_VENV)/bin/python -m pip install -q --upgrade pip
	$(REFERENCE_VENV)/bin/python -m pip install -q --index-url $(TORCH_INDEX) torch
	$(REFERENCE_VENV)/bin/python -m pip install -q -r benchmarks/reference/requirements.txt
	touch $@

reference-env: $(REFERENCE_VENV)/.installed

clean:
	rm -rf $(VENV)
