#!/usr/bin/env bash
# Reproduce the numbers in docs/evaluation.md: the four baselines, every single model and the oracle on every
# public routing file, then on arena-bench-v1-dev with 5-fold CV where each fold may also train on the others.
# Usage: benchmarks/eval_public_data.sh OUT_DIR   (takes ~15-30 min on 2 CPU cores; embeddings are cached)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?give an output directory}
DATA=${POINTSMAN_SHARED_DATA:-../shared/data}
PRICES=(--prices "$DATA/prices.json" --prices benchmarks/eval_prices_extra.json)
mkdir -p "$OUT"
nice -n 10 .venv/bin/pointsman eval --data "$DATA/routing" "${PRICES[@]}" --max-prompts "${MAX_PROMPTS:-1000}" --out "$OUT/per-file"
EXTRA=()
for f in "$DATA"/routing/*.jsonl.gz; do
  case "$f" in *arena-bench-v1-dev*) ;; *) EXTRA+=(--train-extra "$f") ;; esac
done
nice -n 10 .venv/bin/pointsman eval --data "$DATA/routing/arena-bench-v1-dev.jsonl.gz" "${EXTRA[@]}" \
  "${PRICES[@]}" --max-prompts "${MAX_PROMPTS:-1000}" --out "$OUT/arena-with-extra"
