# Sourced by gpu.sh and gpu_checks.sh: the python to use and its import path. Where pip cannot reach PyPI, put
# wheels in .whl/ and set PURERL_WHEELS=.whl: they are installed into /tmp/site first (no dependency resolution,
# nothing else touched). Run from the repository root.
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if [[ -n "${PURERL_WHEELS:-}" ]]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$PURERL_WHEELS"/*.whl || exit 1
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
