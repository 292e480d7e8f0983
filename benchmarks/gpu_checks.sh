#!/usr/bin/env bash
# The GPU-only checks of the agents, each with its own time limit, results copied into RESULTS_DIR as soon
# as a step ends (a step that runs long costs only itself):
#   hnpg-H   HNPG headline on the H-step combination lock, 5 vmapped seeds, up to the spec's 1.5M-step budget,
#            with the per-timestep good-action diagnostic; HNPG_SECONDS caps it (default 300);
#   torch    TD3+BC / IQL updates/s, purerl (JAX) vs the PyTorch reference, both on the GPU;
#   prdc     PRDC (brute-force exact NN search over 1M rows) and O-DICE updates/s vs TD3+BC, 1 and 8 seeds;
#   ppo-ENV-SIDE  (ENV hopper, walker2d or halfcheetah; SIDE purerl or brax) PPO at brax's published budget
#            for the env, 3 seeds, against brax's own ppo.train (benchmarks/bench_brax_trainers.py --part
#            train): the final returns under one evaluator, and from the purerl side the offline experts
#            (RESULTS_DIR/experts/ENV/{expert,medium}.npz + .json; `python -m benchmarks.ship_brax_experts
#            RESULTS_DIR/experts/ENV` makes them collect's packaged experts). BRAX_SECONDS caps it (default 500);
#            BRAX_BUDGET (env steps per seed) shrinks the budget for a dry run on a CPU.
#            Resumable: the purerl side checkpoints under RESULTS_DIR/brax_trainers_runs and the brax side
#            keeps each finished seed there, so the same command on a RESULTS_DIR holding the last call's
#            files goes on where it stopped.
#   pmoe-ENV-ALGO  (ALGO sac or pmoe_sac) one side of PMOE-SAC vs SAC on brax ENV (spring, 16 envs) at 1M env
#            steps, 5 vmapped seeds, with the training curve, the final returns and PMOE's router
#            diagnostics (benchmarks/bench_sac.py learn; about 4-6 minutes on an H200 from the 100k runs);
#   pmoe-ENV-auc   the AUC difference with its CI from the two sides' result files in RESULTS_DIR.
#
#   bash benchmarks/gpu_checks.sh RESULTS_DIR [STEP ...]      # default steps: hnpg-50 torch prdc
#
# Needs a CUDA jax and, for `torch`, torch with CUDA in the same python; PURERL_WHEELS: see gpu_env.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: gpu_checks.sh RESULTS_DIR [STEP ...]}
shift
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(hnpg-50 torch prdc)
hnpg_seconds=${HNPG_SECONDS:-300}
brax_seconds=${BRAX_SECONDS:-500}
mkdir -p "$out"
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.5 # leave half the GPU to the PyTorch process of `torch`
source benchmarks/gpu_env.sh
"$PYTHON" -c "import jax, flax, optax, torch; print('jax', jax.__version__, jax.devices(), 'torch', torch.__version__)"
note="one idle GPU, nothing else running (benchmarks/gpu_checks.sh)"

for step in "${steps[@]}"; do
  echo "== $step"
  case $step in
    hnpg-*)
      timeout $((hnpg_seconds + 40)) "$PYTHON" -m benchmarks.bench_hnpg headline --horizon "${step#hnpg-}" \
        --iters 1500 --chunk 50 --seeds 5 --max-seconds "$hnpg_seconds" --out "$out" --note "$note"
      rc=$?
      ;;
    torch)
      timeout 150 "$PYTHON" -m benchmarks.bench_offline_vs_torch --torch-python "$PYTHON" --device cuda \
        --threads 1 --rounds 1 --updates 2000 --chunks 2 --torch-updates 400 --torch-repeats 2 \
        --torch-max-seconds 3 --name offline_vs_torch_gpu --note "$note"
      rc=$?
      cp benchmarks/results/offline_vs_torch_gpu.json "$out"/
      ;;
    prdc)
      # the brute-force search (the GPU's choice) on synthetic rows: the device has no dataset cache
      timeout 110 "$PYTHON" -m benchmarks.bench_prdc_odice --data synthetic --rows 1000000 --updates 500 \
        --chunks 2 --stages 0 --prdc-modes exact --odice --out "$out"/prdc_odice_speed_1000000.json
      rc=$?
      ;;
    ppo-*-purerl|ppo-*-brax)
      env=${step#ppo-}
      env=${env%-*}
      timeout "$brax_seconds" "$PYTHON" -m benchmarks.bench_brax_trainers --env "$env" --part train \
        --side "${step##*-}" --seeds 3 --out "$out/brax_trainers_runs" --experts "$out/experts" --results "$out" \
        ${BRAX_BUDGET:+--budget "$BRAX_BUDGET"}
      rc=$?
      ;;
    pmoe-*-sac|pmoe-*-pmoe_sac)
      env=${step#pmoe-}
      algo=${env#*-}
      env=${env%%-*}
      timeout 560 "$PYTHON" -m benchmarks.bench_sac learn --algo "$algo" --env "$env" --total 1000000 \
        --seeds 5 --num-envs 16 --brax-backend spring --out "$out"
      rc=$?
      ;;
    pmoe-*-auc)
      env=${step#pmoe-}
      timeout 60 "$PYTHON" -m benchmarks.bench_sac auc --env "${env%-auc}" --total 1000000 --out "$out"
      rc=$?
      ;;
    *)
      echo "unknown step $step (hnpg-H, torch, prdc, ppo-ENV-SIDE, pmoe-ENV-ALGO, pmoe-ENV-auc)"
      rc=2
      ;;
  esac
  echo "$step: rc $rc (124: its time limit ended it)"
done
ls -la "$out"
