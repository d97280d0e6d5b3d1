#!/usr/bin/env bash
# The GPU benchmark in one command, for a lent machine that has only Python, torch and CUDA:
#   bash benchmarks/gpu.sh            -> $OUT/gpu.json and $OUT/gpu.log (OUT defaults to a temp folder)
# Packages the bare image lacks (ray, pyarrow, boto3, safetensors, ...) are installed from ./wheels when that
# folder travels with the checkout (docs/PERFORMANCE.md says how to build it); without them the pipeline
# section reports itself skipped and the rest still runs.
set -uo pipefail
OUT=${OUT:-$(mktemp -d)}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
if [ -d wheels ]; then
  "$PYTHON" -m pip install --quiet --no-index --find-links wheels wheels/*.whl 2>&1 | tail -3 \
    || echo "gpu.sh: installing wheels/ failed; sections that need them will say so"
fi
timeout 470 "$PYTHON" benchmarks/gpu.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu.log"
