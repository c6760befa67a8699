"""The evaluation harness: train routers on honest splits, sweep the cost weight, measure, compare.

``evaluate_dataset`` takes one dataset's records and the names of registered scorers (``SCORERS``: the
baselines, the prior, the neural scorer), and returns a ``DatasetResult`` with, for every router and for the
references (every single model, the convex hull of singles, the oracle), the quality–cost curve, AIQ,
quality at the best single model's cost, cost to match it, and for the strong/weak pair the PGR curve, APGR
and CPT(50%)/CPT(80%); AIQ and APGR carry bootstrap confidence intervals over prompts.

Every router is trained per fold on the same training rows (plus ``train_extra``, minus any row whose prompt
is in that fold's test set) and predicts only prompts it did not see; predictions of all folds are pooled, so
with k-fold every prompt is evaluated once. The bootstrap resamples prompts with the same indices for every
router (paired), which is what makes two routers' intervals comparable.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pointsman.data import RoutingRecord, load_routing, models_in
from pointsman.errors import DataError, ScorerError, UnknownNameError
from pointsman.evaluation.costs import (
    OutputLengths,
    Price,
    expected_cost_matrix,
    realised_cost_matrix,
    require_prices,
)
from pointsman.evaluation.curves import Sweep, default_lambdas, sweep
from pointsman.evaluation.metrics import (
    Hull,
    PGRCurve,
    aiq,
    apgr,
    cost_to_match,
    cpt,
    pgr_curve,
    quality_at_cost,
    upper_hull,
)
from pointsman.evaluation.splits import SplitPlan, plan_splits, subsample
from pointsman.scorer.base import Scorer, load_registry

__all__ = [
    "DEFAULT_PAIR",
    "DEFAULT_ROUTERS",
    "DatasetResult",
    "EvalOptions",
    "RouterResult",
    "evaluate_dataset",
    "evaluate_files",
    "train_scorer",
]

DEFAULT_ROUTERS = ("random", "best-single", "knn", "mf")
DEFAULT_PAIR = ("gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1")
ORACLE = "oracle"
SINGLES_HULL = "singles-hull"


class EvalOptions(BaseModel):
    """How to evaluate. Every field has a default; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")

    routers: list[str] = Field(default_factory=lambda: list(DEFAULT_ROUTERS))
    candidates: list[str] | None = None  # default: every priced model labelled on >= min_label_share
    pair: tuple[str, str] | None = None  # (strong, weak); default DEFAULT_PAIR when both are candidates
    folds: int | None = None  # force k-fold even where the source has a test split
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    kfold_below: int = Field(default=2000, ge=2)  # k-fold when a dataset has fewer distinct prompts than this
    seed: int = 0
    max_prompts: int | None = Field(default=3000, ge=1)  # per file; None uses every prompt
    bootstrap: int = Field(default=500, ge=0)
    n_lambdas: int = Field(default=60, ge=2)
    min_label_share: float = Field(default=0.9, gt=0, le=1)
    router_options: dict[str, dict[str, Any]] = Field(default_factory=dict)


@dataclass
class RouterResult:
    """One router's (or reference's) curve and metrics on one dataset."""

    name: str
    kind: str  # "router" | "oracle" | "singles-hull"
    points_cost: np.ndarray  # (L,) USD per prompt
    points_quality: np.ndarray  # (L,)
    lambdas: np.ndarray | None
    hull: Hull
    aiq: float
    aiq_ci: tuple[float, float] | None
    quality_at_best_single_cost: float | None
    cost_to_match_best_single: float | None
    pgr: PGRCurve | None = None
    apgr: float | None = None
    apgr_ci: tuple[float, float] | None = None
    cpt50: float | None = None
    cpt80: float | None = None
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    aiq_boot: np.ndarray | None = None  # (B,) AIQ on each bootstrap resample
    aiq_gain: float | None = None  # AIQ minus the singles hull's AIQ
    aiq_gain_ci: tuple[float, float] | None = None  # paired bootstrap interval of that difference


@dataclass
class DatasetResult:
    name: str
    path: str
    source: str
    label: str
    n_prompts: int  # evaluated rows
    n_incomplete: int  # evaluated-side rows dropped because a candidate had no label on them
    split: SplitPlan
    candidates: list[str]
    pair: tuple[str, str] | None
    pair_note: str
    singles_quality: dict[str, float]
    singles_cost: dict[str, float]
    best_single: str
    c_min: float
    c_max: float
    routers: dict[str, RouterResult]
    references: dict[str, RouterResult]
    bootstrap: int
    notes: list[str] = field(default_factory=list)


def train_scorer(
    name: str,
    records: Sequence[RoutingRecord],
    *,
    seed: int,
    target_source: str | None,
    options: dict[str, Any] | None = None,
) -> Scorer:
    """Build the registered scorer ``name`` and train it on ``records``; a scorer that cannot be trained
    (a shipped, pretrained one) is built with its defaults instead."""
    registry = load_registry()
    if name not in registry:
        raise UnknownNameError("router", name, registry, param="router")
    cls = registry[name]
    try:
        return cls.fit(records, seed=seed, target_source=target_source, **(options or {}))
    except NotImplementedError:
        try:
            return cls()
        except TypeError as exc:
            raise ScorerError(
                f"scorer {name!r} can neither be trained nor built without arguments ({exc}); "
                "evaluate it through its own loading code"
            ) from exc


def _choose_candidates(
    records: Sequence[RoutingRecord], options: EvalOptions, prices: dict[str, Price], origin: str, path: str
) -> tuple[list[str], list[str]]:
    counts = Counter(m for r in records for m in r.scores)
    notes: list[str] = []
    if options.candidates is not None:
        for m in options.candidates:
            if counts[m] == 0:
                raise DataError(
                    f"candidate {m!r} has no labels in this file; labelled models: {', '.join(sorted(counts))}",
                    path=path,
                    field="scores",
                )
        require_prices(prices, options.candidates, origin)
        return list(options.candidates), notes
    need = options.min_label_share * len(records)
    labelled = [m for m in models_in(records) if counts[m] >= need]
    unpriced = [m for m in labelled if m not in prices]
    candidates = [m for m in labelled if m in prices]
    if unpriced:
        notes.append(f"left out for want of a price in {origin}: {', '.join(unpriced)}")
    if len(candidates) < 2:
        raise DataError(
            f"only {len(candidates)} labelled model(s) have a price in {origin}; a router needs two. "
            f"Add prices for some of {', '.join(unpriced) or 'the labelled models'} with --prices",
            path=path,
        )
    return candidates, notes


def _choose_pair(
    candidates: list[str], options: EvalOptions, train_quality: dict[str, float], prices: dict[str, Price]
) -> tuple[tuple[str, str] | None, str]:
    if options.pair is not None:
        for m in options.pair:
            if m not in candidates:
                raise UnknownNameError("pair model (not a candidate)", m, candidates, param="pair")
        if options.pair[0] == options.pair[1]:
            raise DataError(f"--pair needs two different models, got {options.pair[0]!r} twice", field="pair")
        return options.pair, "given with --pair"
    if DEFAULT_PAIR[0] in candidates and DEFAULT_PAIR[1] in candidates:
        return DEFAULT_PAIR, "RouteLLM's default pair"
    strong = max(candidates, key=lambda m: (train_quality.get(m, 0.0), -prices[m].output_per_m))
    others = [m for m in candidates if m != strong]
    weak = min(
        others, key=lambda m: (prices[m].input_per_m + prices[m].output_per_m, -train_quality.get(m, 0.0))
    )
    return (
        strong,
        weak,
    ), "strong = best mean quality on the training rows, weak = the cheapest other candidate"


def _ci(values: list[float]) -> tuple[float, float] | None:
    if not values:
        return None
    lo, hi = np.percentile(np.asarray(values), [2.5, 97.5])
    return float(lo), float(hi)


@dataclass(frozen=True)
class _Context:
    """What every curve on a dataset is measured against."""

    c_min: float
    c_max: float
    best_quality: float
    best_cost: float
    boot: np.ndarray  # (B, N) bootstrap resamples of prompt indices, shared by all routers


def _curve_result(
    name: str, kind: str, sw: Sweep, quality: np.ndarray, cost: np.ndarray, ctx: _Context
) -> RouterResult:
    hull = upper_hull(sw.cost, sw.quality)
    q_chosen = sw.chosen(quality)  # (L, N)
    c_chosen = sw.chosen(cost)
    aiqs = []
    for idx in ctx.boot:
        singles_c = cost[idx].mean(axis=0)
        h = upper_hull(c_chosen[:, idx].mean(axis=1), q_chosen[:, idx].mean(axis=1))
        aiqs.append(aiq(h, float(singles_c.min()), float(singles_c.max())))
    return RouterResult(
        name=name,
        kind=kind,
        points_cost=sw.cost,
        points_quality=sw.quality,
        lambdas=sw.lambdas,
        hull=hull,
        aiq=aiq(hull, ctx.c_min, ctx.c_max),
        aiq_ci=_ci(aiqs),
        quality_at_best_single_cost=quality_at_cost(hull, ctx.best_cost),
        cost_to_match_best_single=cost_to_match(hull, ctx.best_quality),
        aiq_boot=np.asarray(aiqs),
    )


def _pair_metrics(
    result: RouterResult, margin: np.ndarray, q_strong: np.ndarray, q_weak: np.ndarray, boot: np.ndarray
) -> None:
    curve = pgr_curve(margin, q_strong, q_weak)
    if curve is None:
        return
    result.pgr = curve
    result.apgr = apgr(curve)
    result.cpt50 = cpt(curve, 0.5)
    result.cpt80 = cpt(curve, 0.8)
    values = []
    for idx in boot:
        c = pgr_curve(margin[idx], q_strong[idx], q_weak[idx])
        if c is not None:
            values.append(apgr(c))
    result.apgr_ci = _ci(values)


def _singles_hull_result(quality: np.ndarray, cost: np.ndarray, ctx: _Context) -> RouterResult:
    qs, cs = quality.mean(axis=0), cost.mean(axis=0)
    hull = upper_hull(cs, qs)
    aiqs = []
    for idx in ctx.boot:
        bq, bc = quality[idx].mean(axis=0), cost[idx].mean(axis=0)
        aiqs.append(aiq(upper_hull(bc, bq), float(bc.min()), float(bc.max())))
    return RouterResult(
        name=SINGLES_HULL,
        kind="singles-hull",
        points_cost=cs,
        points_quality=qs,
        lambdas=None,
        hull=hull,
        aiq=aiq(hull, ctx.c_min, ctx.c_max),
        aiq_ci=_ci(aiqs),
        quality_at_best_single_cost=quality_at_cost(hull, ctx.best_cost),
        cost_to_match_best_single=cost_to_match(hull, ctx.best_quality),
        aiq_boot=np.asarray(aiqs),
        apgr=0.5,  # mixing the pair at random recovers the gap in proportion: PGR(x) = x
        cpt50=0.5,
        cpt80=0.8,
    )


def _warm_embeddings(
    options: EvalOptions,
    registry: dict[str, type[Scorer]],
    records: Sequence[RoutingRecord],
    progress: Any | None,
) -> None:
    """Embed every prompt once, up front and with a progress bar, when a router uses the shared embedding cache."""
    shared = [
        r
        for r in options.routers
        if getattr(registry[r], "uses_prompt_embeddings", False)
        and "embedder" not in options.router_options.get(r, {})
    ]
    if shared:
        from pointsman.baselines.embeddings import default_embedder

        default_embedder().embed([r.prompt for r in records], progress=progress)


@dataclass
class _Pooled:
    """Out-of-fold predictions of every router, pooled over folds, in the order of ``rows``."""

    rows: list[int]  # evaluated record indices
    predicted: dict[str, np.ndarray]  # router -> (N, M)
    timings: dict[str, tuple[float, float]]  # router -> (fit seconds, predict seconds), summed over folds
    expected: np.ndarray  # (N, M) expected USD, from each fold's training lengths
    cost: np.ndarray  # (N, M) realised USD
    n_incomplete: int  # test rows skipped because a candidate has no label on them
    train_quality: dict[str, float]  # mean label per candidate over the training rows of all folds


def _predict_folds(
    records: Sequence[RoutingRecord],
    plan: SplitPlan,
    candidates: list[str],
    options: EvalOptions,
    prices: dict[str, Price],
    *,
    source: str,
    name: str,
    train_extra: Sequence[RoutingRecord],
    progress: Any | None,
) -> _Pooled:
    """Train every router on each fold's training rows (plus ``train_extra`` minus the fold's test prompts) and
    predict the fold's test rows that have a label for every candidate."""
    complete = [all(c in r.scores for c in candidates) for r in records]
    rows: list[int] = []
    predicted: dict[str, list[np.ndarray]] = {router: [] for router in options.routers}
    fit_s = dict.fromkeys(options.routers, 0.0)
    predict_s = dict.fromkeys(options.routers, 0.0)
    expected: list[np.ndarray] = []
    cost: list[np.ndarray] = []
    label_sum = dict.fromkeys(candidates, 0.0)
    label_n = dict.fromkeys(candidates, 0)
    n_incomplete = 0
    task = None
    if progress is not None:
        task = progress.add_task(
            f"{name}: training and predicting", total=len(plan.folds) * len(options.routers)
        )
    for fold in plan.folds:
        test_idx = [i for i in fold.test if complete[i]]
        n_incomplete += len(fold.test) - len(test_idx)
        if not test_idx:
            continue
        test_prompts = {records[i].prompt for i in fold.test}
        train = [records[i] for i in fold.train]
        train += [r for r in train_extra if r.prompt not in test_prompts]
        for r in (records[i] for i in fold.train):
            for c in candidates:
                if c in r.scores:
                    label_sum[c] += r.scores[c]
                    label_n[c] += 1
        test = [records[i] for i in test_idx]
        lengths = OutputLengths(train)
        expected.append(expected_cost_matrix(test, candidates, prices, lengths))
        cost.append(realised_cost_matrix(test, candidates, prices, lengths))
        rows.extend(test_idx)
        prompts = [r.prompt for r in test]
        for router in options.routers:
            start = time.perf_counter()
            scorer = train_scorer(
                router,
                train,
                seed=options.seed,
                target_source=source,
                options=options.router_options.get(router),
            )
            mid = time.perf_counter()
            q = np.asarray(scorer.predict(prompts, candidates).quality, dtype=float)
            fit_s[router] += mid - start
            predict_s[router] += time.perf_counter() - mid
            assert q.shape == (len(test), len(candidates)), (
                f"scorer {router!r} returned shape {q.shape}, expected {(len(test), len(candidates))}"
            )
            predicted[router].append(q)
            if progress is not None and task is not None:
                progress.advance(task)
    m = len(candidates)
    return _Pooled(
        rows=rows,
        predicted={r: np.concatenate(v) if v else np.zeros((0, m)) for r, v in predicted.items()},
        timings={r: (fit_s[r], predict_s[r]) for r in options.routers},
        expected=np.concatenate(expected) if expected else np.zeros((0, m)),
        cost=np.concatenate(cost) if cost else np.zeros((0, m)),
        n_incomplete=n_incomplete,
        # Only chooses which pair APGR is reported for (a reporting choice, never a routing decision).
        train_quality={c: label_sum[c] / label_n[c] for c in candidates if label_n[c]},
    )


def evaluate_dataset(
    records: Sequence[RoutingRecord],
    *,
    name: str,
    path: str,
    prices: dict[str, Price],
    prices_origin: str,
    options: EvalOptions | None = None,
    train_extra: Sequence[RoutingRecord] = (),
    progress: Any | None = None,
) -> DatasetResult:
    """Evaluate ``options.routers`` on one dataset. ``progress`` is an optional ``rich.progress.Progress``."""
    options = options or EvalOptions()
    registry = load_registry()
    for router in options.routers:
        if router not in registry:
            raise UnknownNameError("router", router, registry, param="router")
    records = subsample(records, options.max_prompts, seed=options.seed)
    source = Counter(r.source for r in records).most_common(1)[0][0]
    label = next((r.label for r in records if r.source == source), "")
    candidates, notes = _choose_candidates(records, options, prices, prices_origin, path)
    plan = plan_splits(
        records,
        seed=options.seed,
        folds=options.folds,
        test_fraction=options.test_fraction,
        kfold_below=options.kfold_below,
    )
    _warm_embeddings(options, registry, [*records, *train_extra], progress)
    pooled = _predict_folds(
        records,
        plan,
        candidates,
        options,
        prices,
        source=source,
        name=name,
        train_extra=train_extra,
        progress=progress,
    )
    if not pooled.rows:
        raise DataError(
            f"no prompt has labels for every candidate ({', '.join(candidates)}); choose --candidates that were "
            "evaluated on the same prompts",
            path=path,
        )
    n_incomplete = pooled.n_incomplete
    if n_incomplete:
        notes.append(f"{n_incomplete} evaluation rows skipped: a candidate has no label on them")
    eval_rows, predicted, timings = pooled.rows, pooled.predicted, pooled.timings
    train_quality = pooled.train_quality

    quality = np.array([[records[i].scores[c] for c in candidates] for i in eval_rows])  # (N, M)
    cost, expected = pooled.cost, pooled.expected  # (N, M) realised and expected USD
    n = quality.shape[0]
    singles_q, singles_c = quality.mean(axis=0), cost.mean(axis=0)
    best = int(np.lexsort((singles_c, -singles_q))[0])  # best quality, cheaper on ties
    best_q, best_c = float(singles_q[best]), float(singles_c[best])
    c_min, c_max = float(singles_c.min()), float(singles_c.max())
    rng = np.random.default_rng(options.seed + 1)
    boot = rng.integers(0, n, size=(options.bootstrap, n))
    lambdas = default_lambdas(expected, options.n_lambdas)
    pair, pair_note = _choose_pair(candidates, options, train_quality, prices)
    s, w = (candidates.index(pair[0]), candidates.index(pair[1])) if pair else (0, 0)
    ctx = _Context(c_min=c_min, c_max=c_max, best_quality=best_q, best_cost=best_c, boot=boot)

    routers: dict[str, RouterResult] = {}
    for router in options.routers:
        pred_q = predicted[router]
        result = _curve_result(
            router, "router", sweep(pred_q, expected, quality, cost, lambdas), quality, cost, ctx
        )
        result.fit_seconds, result.predict_seconds = timings[router]
        if pair:
            _pair_metrics(result, pred_q[:, s] - pred_q[:, w], quality[:, s], quality[:, w], boot)
        routers[router] = result
    oracle = _curve_result(ORACLE, "oracle", sweep(quality, cost, quality, cost, lambdas), quality, cost, ctx)
    if pair:
        _pair_metrics(oracle, quality[:, s] - quality[:, w], quality[:, s], quality[:, w], boot)
    hull = _singles_hull_result(quality, cost, ctx)
    for r in [*routers.values(), oracle]:
        # Paired: the same resampled prompts for the router and for mixing single models.
        r.aiq_gain = r.aiq - hull.aiq
        if r.aiq_boot is not None and hull.aiq_boot is not None and r.aiq_boot.size:
            r.aiq_gain_ci = _ci(list(r.aiq_boot - hull.aiq_boot))
    if pair is None or abs(singles_q[s] - singles_q[w]) < 1e-12:
        hull.apgr = hull.cpt50 = hull.cpt80 = None
        if pair:
            notes.append(f"{pair[0]} and {pair[1]} have the same mean quality: PGR is undefined")
    return DatasetResult(
        name=name,
        path=path,
        source=source,
        label=label,
        n_prompts=n,
        n_incomplete=n_incomplete,
        split=plan,
        candidates=candidates,
        pair=pair,
        pair_note=pair_note,
        singles_quality={c: float(singles_q[j]) for j, c in enumerate(candidates)},
        singles_cost={c: float(singles_c[j]) for j, c in enumerate(candidates)},
        best_single=candidates[best],
        c_min=c_min,
        c_max=c_max,
        routers=routers,
        references={ORACLE: oracle, SINGLES_HULL: hull},
        bootstrap=options.bootstrap,
        notes=notes,
    )


def dataset_name(path: str | Path) -> str:
    """``routing/arena-bench-v1-dev.jsonl.gz`` → ``arena-bench-v1-dev``."""
    base = Path(path).name
    for suffix in (".gz", ".jsonl", ".json"):
        base = base.removesuffix(suffix)
    return base


def evaluate_files(
    paths: Sequence[str | Path],
    *,
    prices: dict[str, Price],
    prices_origin: str,
    options: EvalOptions | None = None,
    train_extra_paths: Sequence[str | Path] = (),
    progress: Any | None = None,
) -> list[DatasetResult]:
    """Evaluate on each file separately; ``train_extra_paths`` add training rows to every fold of every file."""
    options = options or EvalOptions()
    extra: list[RoutingRecord] = []
    for p in train_extra_paths:
        extra.extend(subsample(load_routing(p), options.max_prompts, seed=options.seed))
    results = []
    for p in paths:
        records = load_routing(p)
        sources = {r.source for r in records}
        # A file given both ways (evaluate on it, train on the others) must not train on its own rows.
        extra_here = [r for r in extra if r.source not in sources]
        results.append(
            evaluate_dataset(
                records,
                name=dataset_name(p),
                path=str(p),
                prices=prices,
                prices_origin=prices_origin,
                options=options,
                train_extra=extra_here,
                progress=progress,
            )
        )
    return results
