#!/usr/bin/env bash
# The device checks, in one call on a CUDA machine (python3 with torch, numpy, scikit-learn,
# matplotlib, tqdm and pytest already there; nothing is installed):
#   bash benchmarks/gpu_check.sh OUTDIR
# 1. the package's unit tests with CUDA present (the @cuda tests run instead of skipping);
# 2. the speed benchmark at the real HW8 size, written to OUTDIR/speed_cuda.json.
set -uo pipefail
out="${1:-/tmp/gpu_check}"
mkdir -p "$out"
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
python3 -m pytest -q -p no:cacheprovider -rs --junitxml="$out/pytest_cuda.xml" \
  tests/test_device.py tests/test_models.py tests/test_train.py tests/test_anomaly.py \
  tests/test_datasets.py tests/checks/test_assertions.py tests/test_cli.py 2>&1 | tee "$out/pytest_cuda.log" | tail -25
python3 benchmarks/speed.py --device cuda --json "$out/speed_cuda.json" 2>&1 | tee "$out/speed_cuda.log"
