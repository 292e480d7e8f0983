#!/usr/bin/env bash
# Headline benchmarks on one accelerator in under 10 minutes: PPO CartPole-v1 with 1/8/64/1024 vmapped seeds,
# PPO on brax halfcheetah (2048 envs), SAC and PMOE-SAC gradient steps/s, TD3+BC updates/s (1M-row dataset,
# 1 and 8 seeds) and one TA-LPO evolution-strategies generation (64 inner PPO runs).
#
#   bash benchmarks/gpu.sh [RESULTS_DIR]        # default benchmarks/results/<device kind>/
#
# Needs purerl's dependencies with a CUDA (or TPU) jax. Where pip cannot reach PyPI, put wheels in .whl/ and set
# PURERL_WHEELS=.whl: they are installed into /tmp/site first (no dependency resolution, nothing else touched).
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/gpu_env.sh
kind=$("$PYTHON" -c "import jax; print(jax.devices()[0].device_kind.replace(' ', '_'))")
out=${1:-benchmarks/results/$kind}
echo "device: $kind -> $out"
"$PYTHON" -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())"
"$PYTHON" -m benchmarks.run --suite accelerator --out "$out"
