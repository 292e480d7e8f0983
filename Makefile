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

.PHONY: run test lint clean

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

clean:
	rm -rf $(VENV)
