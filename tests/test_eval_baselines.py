"""The baselines behind the scorer interface: registry, training, prediction, scales, errors, the embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _eval_helpers import words_embedder

from pointsman.baselines._common import SourceScales, label_matrix
from pointsman.baselines.embeddings import EmbeddingCache, default_embedder
from pointsman.data import RoutingRecord
from pointsman.errors import ConfigError, DataError, UnknownNameError
from pointsman.scorer.base import load_registry


def rec(i: int, prompt: str, scores: dict[str, float], source: str = "s") -> RoutingRecord:
    return RoutingRecord(
        id=f"{source}/{i}", source=source, task="", split="train", prompt=prompt, label="", scores=scores
    )


def two_topics(n: int = 30, source: str = "s") -> list[RoutingRecord]:
    """Maths prompts only model a answers well; greetings both answer equally well."""
    out = []
    for i in range(n):
        out.append(rec(2 * i, f"solve the equation integral number {i}", {"a": 1.0, "b": 0.0}, source))
        out.append(rec(2 * i + 1, f"say hello friendly greeting {i}", {"a": 0.8, "b": 0.8}, source))
    return out


def test_registry_has_the_four_baselines() -> None:
    registry = load_registry()
    for name in ("random", "best-single", "knn", "mf"):
        assert name in registry
        assert registry[name].name == name


def test_random_is_uniform_seeded_and_checks_models() -> None:
    cls = load_registry()["random"]
    scorer = cls.fit(two_topics(5), seed=3)
    pred = scorer.predict(["x"] * 400, ["a", "b"])
    assert pred.quality.shape == (400, 2)
    assert pred.quality.min() >= 0 and pred.quality.max() <= 1
    assert abs(pred.quality.mean() - 0.5) < 0.05
    again = cls.fit(two_topics(5), seed=3).predict(["x"] * 400, ["a", "b"])
    assert np.array_equal(pred.quality, again.quality)
    with pytest.raises(UnknownNameError, match="unknown model 'c'"):
        scorer.predict(["x"], ["a", "c"])


def test_best_single_predicts_each_models_mean_on_the_target_source() -> None:
    records = [*two_topics(10), rec(99, "other", {"a": 0.0, "b": 1.0, "z": 0.5}, source="other")]
    scorer = load_registry()["best-single"].fit(records, target_source="s")
    pred = scorer.predict(["anything", "else"], ["a", "b"])
    assert pred.quality.tolist() == [[0.9, 0.4], [0.9, 0.4]]
    # "z" was only labelled in the other source: its standardised mean, mapped onto s's scale.
    z = scorer.predict(["x"], ["z"]).quality[0, 0]
    scales = SourceScales.fit(records, "s")
    expected = scales.mean["s"] + scales.std["s"] * (0.5 - scales.mean["other"]) / scales.std["other"]
    assert z == pytest.approx(np.clip(expected, 0, 1))


def test_unknown_target_source_and_empty_training_are_errors() -> None:
    cls = load_registry()["best-single"]
    with pytest.raises(DataError, match="target source 'nope' is not in the training data"):
        cls.fit(two_topics(2), target_source="nope")
    with pytest.raises(DataError, match="no training records"):
        cls.fit([])


def test_source_scales_round_trip_one_source() -> None:
    records = two_topics(4)
    scales = SourceScales.fit(records, "s")
    labels = label_matrix(records, ["a", "b"])
    assert np.allclose(scales.to_target(scales.standardise(records, labels)), labels)


def test_knn_predicts_from_similar_prompts() -> None:
    scorer = load_registry()["knn"].fit(two_topics(), k=5, embedder=words_embedder)
    pred = scorer.predict(["solve this equation integral", "hello friendly greeting"], ["a", "b"])
    assert pred.quality[0].tolist() == pytest.approx([1.0, 0.0])
    assert pred.quality[1].tolist() == pytest.approx([0.8, 0.8])
    assert pred.uncertainty is not None and pred.uncertainty.shape == (2, 2)


def test_knn_uses_only_neighbours_that_labelled_the_model() -> None:
    records = two_topics(10)
    records.append(rec(500, "solve the equation integral number 0", {"c": 0.3}))
    scorer = load_registry()["knn"].fit(records, k=3, embedder=words_embedder)
    assert scorer.predict(["solve equation"], ["c"]).quality[0, 0] == pytest.approx(0.3)


def test_mf_learns_which_prompts_need_the_strong_model() -> None:
    scorer = load_registry()["mf"].fit(two_topics(), seed=0, embedder=words_embedder)
    pred = scorer.predict(
        ["solve the equation integral number 100", "say hello friendly greeting 100"], ["a", "b"]
    )
    margin_maths = pred.quality[0, 0] - pred.quality[0, 1]
    margin_hello = pred.quality[1, 0] - pred.quality[1, 1]
    assert margin_maths > 0.5
    assert abs(margin_hello) < 0.2


def test_bad_options_are_config_errors() -> None:
    registry = load_registry()
    with pytest.raises(ConfigError, match="'knn' does not take kk; it takes k, embedder"):
        registry["knn"].fit(two_topics(2), kk=3, embedder=words_embedder)
    with pytest.raises(ConfigError, match="k >= 1"):
        registry["knn"].fit(two_topics(2), k=0, embedder=words_embedder)
    with pytest.raises(ConfigError, match="dim >= 1"):
        registry["mf"].fit(two_topics(2), dim=0, embedder=words_embedder)
    with pytest.raises(ConfigError, match="takes no options"):
        registry["random"].fit(two_topics(2), k=3)


@pytest.mark.slow
def test_minilm_embeddings_are_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    torch.set_num_threads(2)
    cache = EmbeddingCache(tmp_path / "cache")
    texts = [
        "How do I sort a list in Python?",
        "Write a haiku about rain.",
        "How do I sort a list in Python?",
    ]
    vectors = cache.embed(texts)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[2])
    assert (tmp_path / "cache" / "embeddings.sqlite3").stat().st_size > 0
    fresh = EmbeddingCache(tmp_path / "cache")
    again = fresh.embed(texts[:2])
    assert fresh._encoder is None  # read from disk, the encoder was never loaded
    assert np.array_equal(again, vectors[:2])
    other_limit = EmbeddingCache(tmp_path / "cache", max_tokens=8)
    assert other_limit.key(texts[0]) != cache.key(texts[0])
    monkeypatch.setenv("POINTSMAN_DATA_DIR", str(tmp_path))
    assert default_embedder().directory == tmp_path / "cache"


def test_mf_groups_nearly_identical_label_sets_and_keeps_distinct_ones_apart() -> None:
    from pointsman.baselines.mf import _label_groups, fit_factors

    observed = np.ones((400, 4), dtype=bool)
    observed[3, 1] = False  # model 1 lacks one prompt of 400: joins model 0's group
    observed[:200, 2] = False  # model 2 was labelled on half the prompts only
    observed[200:, 3] = False  # model 3 on the other half
    groups = sorted((sorted(cols), int(rows.sum())) for rows, cols in _label_groups(observed))
    assert groups == [([0, 1], 400), ([2], 200), ([3], 200)]

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(400, 16))
    truth = emb @ rng.normal(size=(16, 4))
    z = np.where(observed, truth, np.nan)
    projection, latents, bias = fit_factors(emb, z, dim=4)
    pred = emb @ projection.T @ latents.T + bias
    error = np.abs(pred - truth).max(axis=0)
    assert error[[0, 2, 3]].max() < 1e-3  # noiseless and linear: recovered, even where unlabelled
    assert error[1] < 0.05 * truth.std()  # one label of 400 filled with the mean: a small pull


def test_mf_ridge_from_the_kernel_equals_ridge_from_the_gram_matrix() -> None:
    from pointsman.baselines.mf import _ridge_gcv, _ridge_gcv_dual

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 80))
    x -= x.mean(axis=0)
    y = rng.normal(size=(50, 3))
    y -= y.mean(axis=0)
    primal = _ridge_gcv(x.T @ x, x.T @ y, np.sum(y**2, axis=0), 50)
    dual = _ridge_gcv_dual(x, y)
    assert np.allclose(primal, dual, atol=1e-8)
