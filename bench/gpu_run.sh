#!/usr/bin/env bash
# Issue 7 on a lent GPU: the train + evaluate stage logic on MiniLM (bf16 weights carried),
# then a random bert-base throughput sweep (batch 32 and 128, eager and torch.compile).
#
#   once, here (CPU):  python bench/gpu_run.py --export-bf16 bench/carry/all-MiniLM-L6-v2-bf16
#   on the GPU:        bench/gpu_run.sh                  carry: bench/carry, data/tokenized
#   one mode only:     bench/gpu_run.sh pipeline --epochs 1   (or: synthetic --compile off)
#   CPU smoke test:    bench/gpu_run.sh all --device cpu --max-examples 200 --epochs 1
#
# Extra arguments go to bench/gpu_run.py after the defaults below, so they override them.
# Numbers are printed and written as JSON to $OUT (the device tool's folder) or /tmp/gpu_run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # lora_core without pip install
MODEL=${MODEL:-bench/carry/all-MiniLM-L6-v2-bf16}
DEST=${OUT:-/tmp/gpu_run}
mode=all
if [[ $# -gt 0 && $1 != -* ]]; then
  mode=$1
  shift
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python -c 'import torch, transformers; print("torch", torch.__version__, "transformers",
transformers.__version__, "cuda", torch.version.cuda)'
if [[ $mode == all || $mode == pipeline ]]; then
  if [[ ! -f $MODEL/model.safetensors ]]; then
    echo "error: $MODEL/model.safetensors missing: run --export-bf16 here, carry bench/carry" >&2
    exit 2
  fi
  python bench/gpu_run.py pipeline --model "$MODEL" --device cuda --precision bf16 \
    --json "$DEST/pipeline.json" "$@"
fi
if [[ $mode == all || $mode == synthetic ]]; then
  python bench/gpu_run.py synthetic --device cuda --precision bf16 \
    --json "$DEST/synthetic.json" "$@"
fi
