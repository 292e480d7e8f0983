#!/usr/bin/env bash
# The GPU-only checks of the open issues, in one call of at most ~9.5 minutes on one accelerator:
#   1. HNPG headline: H = 50 combination lock, 5 vmapped seeds, up to the spec's 1.5M-step budget (issue 5);
#   2. TD3+BC / IQL updates/s, purerl (JAX) vs the PyTorch reference, both on the GPU (issue 8);
#   3. PRDC (exact NN search over 1M rows) and O-DICE updates/s vs TD3+BC, 1 and 8 seeds (issue 9).
# Each step has its own time limit and copies its result into RESULTS_DIR as soon as it ends, so a step that
# runs long costs only itself.
#
#   bash benchmarks/gpu_checks.sh RESULTS_DIR [HNPG_SECONDS]
#
# Needs a CUDA jax and, for step 2, torch with CUDA in the same python. Where pip cannot reach PyPI, put wheels
# in .whl/ and set PURERL_WHEELS=.whl (installed into /tmp/site, nothing else touched).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: gpu_checks.sh RESULTS_DIR [HNPG_SECONDS]}
hnpg_seconds=${2:-300}
mkdir -p "$out"
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.5 # leave half the GPU to the PyTorch process of step 2
if [[ -n "${PURERL_WHEELS:-}" ]]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$PURERL_WHEELS"/*.whl || exit 1
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
"$PYTHON" -c "import jax, flax, optax, torch; print('jax', jax.__version__, jax.devices(), 'torch', torch.__version__)"
note="one idle GPU, nothing else running (benchmarks/gpu_checks.sh)"

echo "== 1. HNPG H=50 headline (at most ${hnpg_seconds} s of training)"
timeout $((hnpg_seconds + 40)) "$PYTHON" benchmarks/bench_hnpg.py headline --horizon 50 --iters 1500 --chunk 50 \
  --seeds 5 --max-seconds "$hnpg_seconds" --out "$out" --note "$note"
echo "rc $?"

echo "== 2. TD3+BC / IQL: purerl vs PyTorch on the GPU"
timeout 120 "$PYTHON" benchmarks/bench_offline_vs_torch.py --torch-python "$PYTHON" --device cuda --threads 1 \
  --rounds 1 --updates 2000 --chunks 2 --torch-updates 400 --torch-repeats 2 --torch-max-seconds 4 \
  --name offline_vs_torch_gpu --note "$note"
echo "rc $?"
cp benchmarks/results/offline_vs_torch_gpu.json "$out"/ 2>/dev/null

echo "== 3. PRDC / O-DICE vs TD3+BC, 1M rows"
timeout 100 "$PYTHON" benchmarks/bench_prdc_odice.py --rows 1000000 --updates 500 --chunks 2
echo "rc $?"
cp benchmarks/results/prdc_odice_speed_1000000.json "$out"/ 2>/dev/null
ls -la "$out"
