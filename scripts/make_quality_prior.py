"""Regenerate pointsman/data/quality_prior.json: each model's mean quality in the public routing data, on the
default label scale (arena-bench-v1-dev: a GPT-4 judge's 1..10 grade of a chat answer, divided by 10).

Method (documented in docs/routing.md):
1. Models graded in arena-bench-v1-dev take their mean grade there (and the standard deviation of their
   per-prompt grades as the uncertainty).
2. Every other source is mapped onto that scale by a linear fit, across models, of the arena-scale means
   against the source's own means (least squares over the models both have; at least 2 shared models, slope
   kept positive). Sources are calibrated in rounds, so a source that shares models only with an already
   calibrated one (qlora-oa via alpacaeval1) is mapped in a later round. A model calibrated from several
   sources gets the mean of their estimates.
   Uncertainty is the spread of one prompt's grade around the model's mean, on the arena scale: a direct
   model's own per-prompt std; a calibrated model's is the typical arena per-prompt std (the mean over the
   arena models) combined in quadrature with the calibration error (the fit's residual RMS, at least
   MIN_CALIBRATION_ERROR since a 2-point fit has no residual). Source stds are not reused: their label
   distributions (binary correctness, pairwise win probabilities) do not share the arena grade's spread.
3. A source sharing fewer than 2 models with the arena scale even after the rounds (llmrouter shares none)
   is anchored through PROXIES, a small table of sibling models assumed to be about as good; with a single
   anchor the map is a shift (slope 1), and PROXY_EXTRA_UNCERTAINTY is added in quadrature. These numbers
   are guesses and say so (method "proxy-shift").

Usage:  python scripts/make_quality_prior.py [--data-dir ../shared/data] [--out pointsman/data/quality_prior.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from pointsman.data import load_routing, shared_data_dir

TARGET = "arena-bench-v1"  # the source field of arena-bench-v1-dev.jsonl.gz
PROXIES = {"mistral-7b-instruct-v0.3": "mistral-7b-instruct-v0.1"}
PROXY_EXTRA_UNCERTAINTY = 0.1
MIN_SHARED = 2
MIN_CALIBRATION_ERROR = 0.05


def source_stats(data_dir: Path) -> dict[str, dict[str, tuple[float, float, int]]]:
    """{source: {model: (mean, std, n)}} over every routing file."""
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted((data_dir / "routing").glob("*.jsonl.gz")):
        for record in load_routing(path):
            for model, score in record.scores.items():
                scores[record.source][model].append(score)
    return {
        source: {m: (float(np.mean(v)), float(np.std(v)), len(v)) for m, v in models.items()}
        for source, models in scores.items()
    }


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least-squares y = a·x + b with a > 0 (falls back to a shift); returns (a, b, residual RMS)."""
    x = np.array(xs)
    y = np.array(ys)
    a = 1.0
    if len(x) >= 2 and float(np.var(x)) > 1e-12:
        a = float(np.cov(x, y, bias=True)[0, 1] / np.var(x))
    if a <= 0:
        a = 1.0
    b = float(np.mean(y - a * x))
    rms = float(np.sqrt(np.mean((a * x + b - y) ** 2))) if len(x) >= 3 else 0.0
    return a, b, rms


def build(data_dir: Path) -> dict[str, object]:
    stats = source_stats(data_dir)
    if TARGET not in stats:
        raise SystemExit(f"{data_dir}: no {TARGET} data; it defines the default scale")
    known: dict[str, dict[str, object]] = {}
    for model, (mean, std, n) in stats[TARGET].items():
        known[model] = {"quality": mean, "uncertainty": std, "n": n, "method": "direct", "sources": [TARGET]}
    typical_std = float(np.mean([std for _, std, _ in stats[TARGET].values()]))
    calibrations: dict[str, dict[str, object]] = {
        TARGET: {"slope": 1.0, "intercept": 0.0, "shared": len(stats[TARGET])}
    }
    pending = [s for s in stats if s != TARGET]
    round_no = 0
    while pending:
        round_no += 1
        estimates: dict[str, list[tuple[float, float, int, str]]] = defaultdict(list)
        done = []
        for source in sorted(pending):
            shared = sorted(m for m in stats[source] if m in known)
            if len(shared) < MIN_SHARED:
                continue
            a, b, rms = fit_line(
                [stats[source][m][0] for m in shared],
                [float(known[m]["quality"]) for m in shared],  # type: ignore[arg-type]
            )
            calibrations[source] = {
                "slope": a,
                "intercept": b,
                "residual_rms": rms,
                "shared": len(shared),
                "round": round_no,
            }
            for model, (mean, _std, n) in stats[source].items():
                if model in known:
                    continue
                q = min(1.0, max(0.0, a * mean + b))
                error = max(rms, MIN_CALIBRATION_ERROR)
                estimates[model].append((q, math.hypot(typical_std, error), n, source))
            done.append(source)
        if not done:
            break
        for model, found in estimates.items():
            known[model] = {
                "quality": float(np.mean([q for q, _, _, _ in found])),
                "uncertainty": float(np.mean([u for _, u, _, _ in found])),
                "n": sum(n for _, _, n, _ in found),
                "method": "linear-calibration",
                "sources": [s for _, _, _, s in found],
            }
        pending = [s for s in pending if s not in done]
    for source in sorted(pending):
        anchors = [(m, PROXIES[m]) for m in stats[source] if m in PROXIES and PROXIES[m] in known]
        if not anchors:
            print(
                f"warning: {source} shares no model with the calibrated set and has no proxy; skipped",
                file=sys.stderr,
            )
            continue
        shift = float(np.mean([float(known[p]["quality"]) - stats[source][m][0] for m, p in anchors]))  # type: ignore[arg-type]
        calibrations[source] = {"slope": 1.0, "intercept": shift, "shared": 0, "proxies": dict(anchors)}
        for model, (mean, _std, n) in stats[source].items():
            if model in known:
                continue
            known[model] = {
                "quality": min(1.0, max(0.0, mean + shift)),
                "uncertainty": math.hypot(typical_std, MIN_CALIBRATION_ERROR, PROXY_EXTRA_UNCERTAINTY),
                "n": n,
                "method": "proxy-shift",
                "sources": [source],
            }
    models = {
        m: {
            "quality": round(float(v["quality"]), 4),  # type: ignore[arg-type]
            "uncertainty": round(float(v["uncertainty"]), 4),  # type: ignore[arg-type]
            "n": v["n"],
            "method": v["method"],
            "sources": v["sources"],
        }
        for m, v in sorted(known.items())
    }
    return {
        "scale": f"{TARGET}: GPT-4 judge grade of a chat answer (1..10) / 10",
        "generated_by": "scripts/make_quality_prior.py",
        "typical_arena_std": round(typical_std, 4),
        "calibrations": {
            s: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in c.items()}
            for s, c in sorted(calibrations.items())
        },
        "models": models,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=shared_data_dir())
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "pointsman" / "data" / "quality_prior.json",
    )
    args = parser.parse_args()
    if args.data_dir is None:
        raise SystemExit("no routing data found; pass --data-dir or set POINTSMAN_SHARED_DATA")
    prior = build(args.data_dir)
    args.out.write_text(json.dumps(prior, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(prior['models'])} models")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
