#!/usr/bin/env bash
# The large-model path on one GPU, in under 12 minutes: peak memory against the planner, samples/s
# and model FLOP utilisation for random-weight 1B and 7B-shaped decoders (bf16, LoRA, activation
# checkpointing, gradient-cache chunks), and encoding texts/s. Prints one JSON line per case, then
# the evaluation stage's encoding paths on the GPU (texts/s, start-up included).
# Needs the project installed with a CUDA build of torch: pip install -e ".[large]"
# On a CPU, `python bench/gpu_check.py --smoke` runs the same code on a tiny decoder.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || { echo "no GPU visible" >&2; exit 2; }
python -c "import torch; assert torch.cuda.is_available(), 'torch has no CUDA here'; print('torch', torch.__version__, torch.version.cuda)"
timeout 480 python bench/gpu_check.py --steps "${STEPS:-5}" --peak-tflops "${PEAK_TFLOPS:-989}" "$@"
# The evaluation stage's encoding paths on this GPU, one after the other (20,000 texts, e5-small):
# local, sharded as a study runs it (a pool of one GPU: in the stage task) and the Ray Data pool.
for path in local-task sharded ray-data; do
  timeout 200 python bench/eval_scale.py encoding-path --path "$path" --gpus 1 --n 20000 --batch-size 256 | tail -1
done
