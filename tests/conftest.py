"""Test session set-up: CPU only, two fake CPU devices (for the sharding tests), the two XLA CPU flags that
every `purerl` command sets (purerl.cpu), so that in-process runs compute what the CLI computes, bit for bit,
and the compile settings that make the suite's compiles cheaper (below). All must be set before jax is
imported, hence here."""

import os

import pytest

_FLAGS = (
    "--xla_force_host_platform_device_count=2",
    # LLVM at -O2 instead of XLA's default -O3: the suite's hundreds of tiny programs compile about 2x faster
    # (HNPG's train chunk: 8.5 s instead of 20 s) and run as fast. Every comparison in the suite is between
    # programs built under these same flags (CLI subprocesses and worker processes inherit XLA_FLAGS);
    # against a default-flag build some programs differ in the last bits.
    "--xla_backend_optimization_level=2",
    # XLA's older LLVM IR emitter for fusions instead of its MLIR fusion emitters: a program's compile takes
    # about a quarter less (PPO and SAC's tests: 90 -> 65 s of backend compile), though a big one then runs
    # slower (PPO CartPole-v1 8 seeds x 500k: 41-45 s instead of 26-33 s). The suite's runs are tiny, so it
    # gains: clean-clone pytest 15 min 53 s -> 13 min 40 s, the same 786 tests passing. `purerl` keeps XLA's
    # defaults; `make test XLA_FLAGS="--xla_backend_optimization_level=3 --xla_cpu_use_fusion_emitters=true"`
    # runs the suite as `purerl` compiles.
    "--xla_cpu_use_fusion_emitters=false",
    "--xla_cpu_enable_concurrency_optimized_scheduler=false",
    "--xla_cpu_multi_thread_eigen=false",
)
_existing = os.environ.get("XLA_FLAGS", "")
_missing = [f for f in _FLAGS if f.split("=")[0] not in _existing]
os.environ["XLA_FLAGS"] = " ".join([_existing] + _missing).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# CLI runs inside the tests stay in the test process (pytest-xdist already keeps both cores busy); worker
# processes (purerl.workers) are tested explicitly with --workers.
os.environ.setdefault("PURERL_WORKERS", "1")

# Several tests, notebooks and subprocesses compile the same programs (a run and its resume, a CLI run and its
# API twin); JAX's persistent compilation cache lets them share the compiled executables. The cache is keyed
# by the program, the flags and the jaxlib version, so a hit never changes a result. Ignored by git. Every
# program is kept, however quick its compile: the evaluations, inits and renders that several tests compile
# again take 0.1-1 s each. (With a floor of 0.2 s, test_policies.py alone took 95 s; with no floor, 83 s,
# its cache 9.6 MB for 246 programs.)
_REPO = os.path.dirname(os.path.dirname(__file__))
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(_REPO, ".jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


# Most test files run tiny programs, so compiling is most of their time. They compile with XLA's backend
# optimisation off (jax's `jax_disable_most_optimizations`: LLVM at -O0 instead of the -O2 above), which
# roughly halves a program's compile and slows its run. test_policies.py: 69-78 s instead of 121-128 s in a
# clean run; all such files together, about 180 s of the suite's test time. The files in OPTIMISED keep -O2:
# - they run long programs: the SAC, PMOE, HNPG, CDSA and comblock files took 1.0-2.1x their -O2 time at
#   -O0 (SAC's 64 s instead of 31 s), or
# - they check that a seed's run is bitwise the same inside seed batches of different sizes, which holds for
#   the optimised code only (at -O0, seed 1's PPO run in a batch of 2 or of 8 differs in the last bits from
#   the same seed's run in a batch of 4).
# A file's setting holds for its processes too (through JAX_DISABLE_MOST_OPTIMIZATIONS). Programs of both
# settings never mix: the in-memory caches are cleared on a switch, and the setting is part of the
# persistent cache's key. PURERL_TEST_QUICK_COMPILE=0 compiles every file at -O2.
OPTIMISED = frozenset({"test_determinism.py", "test_config_sweep.py", "test_subpo_ant.py", "test_pmoe.py",
                       "test_sac.py", "test_hnpg.py", "test_cdsa.py", "test_comblock.py"})
QUICK_COMPILE = os.environ.get("PURERL_TEST_QUICK_COMPILE", "1") == "1"


@pytest.fixture(autouse=True, scope="module")
def compile_setting(request):
    """Sets the module's compile setting before any of its fixtures compile."""
    quick = QUICK_COMPILE and request.path.name not in OPTIMISED
    if quick != (os.environ.get("JAX_DISABLE_MOST_OPTIMIZATIONS") == "1"):  # the setting in force
        import jax  # here, not at the top: XLA_FLAGS above must be set before jax is imported

        jax.clear_caches()
        jax.config.update("jax_disable_most_optimizations", quick)
        if quick:
            os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
        else:
            os.environ.pop("JAX_DISABLE_MOST_OPTIMIZATIONS", None)


# The heaviest files first (25-85 s of test time each in a clean run): pytest-xdist hands out whole files
# (`--dist loadfile`) in collection order, and a heavy file drawn near the end keeps one worker busy while the
# other has nothing left (longest-first scheduling). The rest keep their order.
HEAVIEST_FIRST = ("test_determinism.py", "test_pmoe.py", "test_policies.py", "test_hnpg.py",
                  "test_workers.py", "test_prdc_odice.py", "test_config_sweep.py", "test_ppo.py",
                  "test_sac.py", "test_cdsa.py", "test_lpo.py", "test_subpo.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(HEAVIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # a stable sort
