# `make run`: create .venv on first use, then train PPO on CartPole-v1 with 8 vmapped seeds.
# `make test`: create .venv on first use, then run the whole test suite (unit, learning, notebooks).
# `make docs`: build the documentation site into build/site (strict: a broken link or docstring fails it).
# `make dist-check`: build the sdist and wheel, install the wheel into a fresh venv, run `purerl list` there.
# `make lock`: re-resolve requirements.lock after a change to pyproject.toml's dependencies.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

# XLA's CPU concurrency-optimised scheduler can wedge big vmapped programs on small CPUs (see README,
# "Known limitations"); tests and CI switch it off. User runs are left alone.
TEST_XLA_FLAGS := --xla_cpu_enable_concurrency_optimized_scheduler=false
# Two pytest workers, one per core (tests/conftest.py switches off XLA's intra-op thread pool); a test file stays
# on one worker so that its module fixtures (compiled programs) are built once. The files go out in the order
# tests/conftest.py gives them (heaviest first), not sorted by their number of tests.
TEST_WORKERS ?= 2

.PHONY: run test lint docs dist-check lock clean reference-env garage-env

# The exact versions of requirements.lock (every extra, so dev and docs too), then purerl itself, editable; the
# ranges in pyproject.toml are what a `pip install purerl` elsewhere accepts.
$(STAMP): pyproject.toml requirements.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -r requirements.lock
	$(VENV)/bin/python -m pip install -q --no-deps -e .
	touch $(STAMP)

# The lock is resolved for Python 3.11 on x86-64 Linux, keeping the versions already pinned where pyproject.toml
# still admits them; `make lock UPGRADE=1` moves every package to its newest admitted version.
LOCK_TARGET := --python-version 3.11 --python-platform x86_64-manylinux_2_28
lock: | $(STAMP)
	$(VENV)/bin/uv pip compile pyproject.toml --all-extras $(LOCK_TARGET) $(if $(UPGRADE),--upgrade) \
		--custom-compile-command "make lock" --quiet --output-file requirements.lock

run: $(STAMP)
	$(VENV)/bin/purerl train ppo --env CartPole-v1 --num-seeds 8

test: $(STAMP)
	PURERL_NOTEBOOK_SMOKE=1 XLA_FLAGS="$(TEST_XLA_FLAGS) $(XLA_FLAGS)" JAX_PLATFORMS=cpu $(VENV)/bin/python -m pytest tests notebooks --nbmake -n $(TEST_WORKERS) --dist loadfile \
		--no-loadscope-reorder

lint: $(STAMP)
	$(VENV)/bin/ruff check purerl tests benchmarks notebooks

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# The wheel is built from the sdist (so a file missing from the sdist fails here too) and installed with the
# dependencies its metadata declares, at the lock's versions; the command runs outside the source tree.
DIST := build/dist
DIST_VENV := build/dist-venv
dist-check: $(STAMP)
	rm -rf $(DIST) $(DIST_VENV)
	mkdir -p $(DIST)
	$(VENV)/bin/uv build --out-dir $(DIST) > $(DIST)/build.log 2>&1 || (cat $(DIST)/build.log; false)
	! grep -i -B2 -A8 "SetuptoolsDeprecationWarning\|SetuptoolsWarning" $(DIST)/build.log  # packaging config warnings fail
	$(PYTHON) -m venv --without-pip $(DIST_VENV)
	$(VENV)/bin/uv pip install --quiet --python $(DIST_VENV)/bin/python --constraint requirements.lock $(DIST)/*.whl
	cd $(DIST_VENV) && bin/purerl --version && bin/purerl list
	cd $(DIST_VENV) && bin/python -c "from purerl.data import shipped; envs = shipped.shipped_envs(); \
		assert 'hopper' in envs, envs; print('shipped experts:', ', '.join(envs))"

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

# `make garage-env`: the venv of the N-PG-IGT / N-HARPG check (benchmarks/reference/npg_igt.py). The authors'
# code is a 2021 fork of garage: Python 3.8 (GARAGE_PYTHON) and garage-era packages; torch 2.4.1 is the last
# release with Python 3.8 wheels.
GARAGE_VENV := benchmarks/reference/.garage-venv
GARAGE_PYTHON ?= python3.8

$(GARAGE_VENV)/.installed: benchmarks/reference/requirements-garage.txt
	test -x $(GARAGE_VENV)/bin/python || $(GARAGE_PYTHON) -m venv $(GARAGE_VENV)
	$(GARAGE_VENV)/bin/python -m pip install -q --upgrade pip
	$(GARAGE_VENV)/bin/python -m pip install -q --index-url $(TORCH_INDEX) torch==2.4.1
	$(GARAGE_VENV)/bin/python -m pip install -q -r benchmarks/reference/requirements-garage.txt
	touch $@

garage-env: $(GARAGE_VENV)/.installed

clean:
	rm -rf $(VENV)
