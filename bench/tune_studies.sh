#!/bin/bash
# #30's tune studies: `lora-sst2 tune --trials 8`, then --apply and check-fresh, on
# examples/own_data.py's two folders, the pairs again with a validation file whose sentences
# train lacks, and SST-2, each scaled down to 1,500 train rows (3 epochs), each in its own
# clone of this repository's HEAD under WORK.
#
#   python examples/own_data.py          # data/raw/{reviews,pairs}, from data/raw/sst2
#   python bench/pairs_heldout.py        # data/raw/pairs-heldout
#   bash bench/tune_studies.sh [WORK]    # default /tmp/tune_studies; 30 to 60 min on 2 cores
#   python bench/tune_table.py WORK/reviews   # default against every complete trial, val and test
#
# Needs data/raw/{sst2,reviews,pairs,pairs-heldout}/ and the model mirror models/base/ (README, Offline).
set -u
export DVC_NO_ANALYTICS=1
ROOT=$(git rev-parse --show-toplevel)
WORK=$(realpath -m "${1:-/tmp/tune_studies}")  # absolute: study() cds into each clone
mkdir -p "$WORK"

study() { # name, a python statement editing params.yaml's dict p
  local name=$1 edit=$2 dir=$WORK/$1
  rm -rf "$dir" && git clone -q "$ROOT" "$dir" || return
  cd "$dir" || return
  rm -rf models/base && ln -s "$ROOT/models/base" models/base
  mkdir -p data/raw && cp -r "$ROOT"/data/raw/{sst2,reviews,pairs,pairs-heldout} data/raw/
  python - "$edit" <<'PY'
import sys, yaml
p = yaml.safe_load(open("params.yaml"))
p["data"]["max_train_examples"] = 1500
exec(sys.argv[1])
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
PY
  git commit -qam "tune study: $name"
  echo "== $(date +%T) $name: tune --trials 8"
  /usr/bin/time -f "%e s wall" lora-sst2 tune --trials 8 2>&1 | tee tune.out
  echo "== $(date +%T) $name: apply"
  lora-sst2 tune --apply 2>&1 | tail -3
  lora-sst2 check-fresh
  echo "experiments in dvc exp show: $(dvc exp ls --name-only | wc -l)"
}

study reviews 'p["data"].update(dir="data/raw/reviews", text_columns=["review"], label_column="sentiment", labels=None)'
# pairs refuse head+tail: model.truncation leaves the space
study pairs 'p["data"].update(dir="data/raw/pairs", text_columns=["premise", "hypothesis"], label_column="label", labels=None); p["tune"]["long_texts"].pop("model.truncation")'
study pairs-heldout 'p["data"].update(dir="data/raw/pairs-heldout", text_columns=["premise", "hypothesis"], label_column="label", labels=None); p["tune"]["long_texts"].pop("model.truncation")'
study sst2 'pass'
echo "== $(date +%T) all done"
