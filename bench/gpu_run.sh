#!/usr/bin/env bash
# On a GPU: the train + evaluate stage logic on the model in models/base/ (after
# `dvc repro tokenize`), then a random bert-base throughput sweep (batch 32 and 128, eager
# and torch.compile).
#
#   both modes:        bench/gpu_run.sh
#   one mode only:     bench/gpu_run.sh pipeline --epochs 1   (or: synthetic --compile off)
#   CPU smoke test:    bench/gpu_run.sh all --device cpu --max-examples 200 --epochs 1
#
# Extra arguments go to bench/gpu_run.py after the defaults below, so they override them.
# Numbers are printed and written as JSON to $OUT, or /tmp/gpu_run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # lora_core without pip install
MODEL=${MODEL:-models/base/sentence-transformers/all-MiniLM-L6-v2}
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
    echo "error: $MODEL/model.safetensors missing: fill the mirror (README, Offline)" >&2
    exit 2
  fi
  python bench/gpu_run.py pipeline --model "$MODEL" --device cuda --precision bf16 \
    --json "$DEST/pipeline.json" "$@"
fi
if [[ $mode == all || $mode == synthetic ]]; then
  python bench/gpu_run.py synthetic --device cuda --precision bf16 \
    --json "$DEST/synthetic.json" "$@"
fi
