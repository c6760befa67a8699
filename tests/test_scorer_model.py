"""The read-out model on random states: shapes, invariants the design promises, and that it learns."""

from __future__ import annotations

import pytest
import torch

from pointsman.scorer.model import LatentScorer, ModelConfig, gap_loss


def tiny_config(**kw: object) -> ModelConfig:
    base: dict[str, object] = dict(
        models=["a", "b", "c", "d"],
        sources=["s1", "s2"],
        default_source="s1",
        n_embd=16,
        d_model=16,
        n_head=2,
    )
    base.update(kw)
    return ModelConfig(**base)  # type: ignore[arg-type]


def inputs(
    B: int = 3, T: int = 7, Q: int = 4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    states = torch.randn(B, T, 16)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 5:] = False
    model_idx = torch.arange(Q).repeat(B, 1) % 4
    source_idx = torch.zeros(B, dtype=torch.long)
    return states, mask, model_idx, source_idx


def test_shapes_and_ranges() -> None:
    model = LatentScorer(tiny_config()).eval()
    states, mask, model_idx, source_idx = inputs()
    out, loss = model(states, mask, model_idx, source_idx)
    assert loss is None
    assert out.scores.shape == (3, 4) and out.std.shape == (3, 4)
    assert bool(((out.scores > 0) & (out.scores < 1)).all())
    assert bool((out.std > 0).all())


def test_each_latent_is_scored_as_if_alone() -> None:
    """Scoring models together gives the same numbers as scoring each one by itself (any subset works)."""
    model = LatentScorer(tiny_config()).eval()
    states, mask, model_idx, source_idx = inputs()
    together, _ = model(states, mask, model_idx, source_idx)
    for q in range(4):
        alone, _ = model(states, mask, model_idx[:, q : q + 1], source_idx)
        torch.testing.assert_close(alone.scores[:, 0], together.scores[:, q])


def test_padding_does_not_change_scores() -> None:
    model = LatentScorer(tiny_config()).eval()
    states, mask, model_idx, source_idx = inputs()
    out, _ = model(states, mask, model_idx, source_idx)
    padded = states.clone()
    padded[1, 5:] = 100.0  # garbage where the mask is False
    out2, _ = model(padded, mask, model_idx, source_idx)
    torch.testing.assert_close(out.scores, out2.scores)
    short, _ = model(states[1:2, :5], mask[1:2, :5], model_idx[1:2], source_idx[1:2])
    torch.testing.assert_close(short.scores[0], out.scores[1])


def test_sources_read_different_heads() -> None:
    model = LatentScorer(tiny_config()).eval()
    with torch.no_grad():
        model.prior[1] += 2.0
    states, mask, model_idx, _ = inputs()
    s1, _ = model(states, mask, model_idx, torch.zeros(3, dtype=torch.long))
    s2, _ = model(states, mask, model_idx, torch.ones(3, dtype=torch.long))
    assert bool((s2.scores > s1.scores).all())


def test_learns_a_prompt_dependent_preference() -> None:
    """Model 0 is good exactly when a keyword token appears anywhere in the prompt, model 1 otherwise."""
    torch.manual_seed(1)
    model = LatentScorer(tiny_config(dropout=0.0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    B, T = 32, 6
    keyword = torch.randn(16) * 2
    idx = torch.tensor([[0, 1]]).repeat(B, 1)
    mask = torch.ones(B, T, dtype=torch.bool)
    source = torch.zeros(B, dtype=torch.long)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        states = torch.randn(B, T, 16)
        has = torch.rand(B) < 0.5
        where = torch.randint(0, T, (B,))
        states[has, where[has]] = keyword
        labels = torch.stack([has.float(), 1 - has.float()], dim=1)
        return states, labels

    for _ in range(150):
        states, labels = batch()
        _, loss = model(states, mask, idx, source, labels)
        assert loss is not None
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    states, labels = batch()
    out, _ = model(states, mask, idx, source)
    accuracy = ((out.scores[:, 0] > out.scores[:, 1]).float() == labels[:, 0]).float().mean()
    assert accuracy > 0.9, (
        f"the read-out did not learn a prompt-dependent preference (accuracy {accuracy:.2f})"
    )


def test_config_invariants() -> None:
    with pytest.raises(AssertionError, match="default source"):
        tiny_config(default_source="nope")
    with pytest.raises(AssertionError, match="unique"):
        tiny_config(models=["a", "a"])
    with pytest.raises(AssertionError, match="multiple of n_head"):
        tiny_config(d_model=15)
    with pytest.raises(AssertionError, match="unknown source"):
        tiny_config(head_of={"x": "nope"})


def test_width_mismatch_is_reported() -> None:
    model = LatentScorer(tiny_config())
    with pytest.raises(AssertionError, match="width"):
        model(
            torch.randn(1, 3, 8),
            torch.ones(1, 3, dtype=torch.bool),
            torch.zeros(1, 1, dtype=torch.long),
            torch.zeros(1, dtype=torch.long),
        )


def test_gap_loss_sees_only_differences_within_a_prompt() -> None:
    labels = torch.tensor([[0.9, 0.2, 0.5], [0.3, 0.3, 0.0]])
    weight = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # the second prompt has two labels
    exact = gap_loss(labels.clone(), labels, weight)
    shifted = gap_loss(labels + torch.tensor([[0.2], [-0.1]]), labels, weight)  # a per-prompt offset
    assert float(exact) == pytest.approx(0.0) and float(shifted) == pytest.approx(0.0, abs=1e-7)
    swapped = labels.clone()
    swapped[0, :2] = labels[0, [1, 0]]  # the first prompt's two models trade places: gap 0.7 becomes -0.7
    # pairs (0,1), (0,2), (1,2) of prompt 0 and (0,1) of prompt 1; the absent label adds no pair
    expected = (1.4**2 + 0.7**2 + 0.7**2 + 0.0) / 4
    assert float(gap_loss(swapped, labels, weight)) == pytest.approx(expected, rel=1e-5)
    one_label = torch.tensor([[1.0, 0.0, 0.0]])
    assert float(gap_loss(torch.rand(1, 3), torch.rand(1, 3), one_label)) == 0.0


def test_pair_loss_adds_the_gap_term_to_the_loss() -> None:
    model = LatentScorer(tiny_config(dropout=0.0)).eval()
    states, mask, model_idx, source_idx = inputs()
    labels = torch.rand(model_idx.shape)
    with torch.no_grad():
        out, plain = model(states, mask, model_idx, source_idx, labels)
        _, with_gap = model(states, mask, model_idx, source_idx, labels, pair_loss=2.0)
    assert plain is not None and with_gap is not None
    weight = torch.ones_like(labels)
    expected = float(plain) + 2.0 * float(gap_loss(out.scores, labels, weight))
    assert float(with_gap) == pytest.approx(expected, rel=1e-5)
    assert float(with_gap) > float(plain)


def test_length_feature_lets_the_read_out_see_how_long_the_prompt_is() -> None:
    """Mean pooling and softmax attention cannot tell a prompt of 3 identical token states from one of 30; with
    ``length_feature`` the read-out also gets the log token count, and an old config without it loads as off."""
    torch.manual_seed(0)
    token = torch.randn(16)
    states = token.expand(2, 30, 16).clone()  # (B, T, C): every token the same
    mask = torch.zeros(2, 30, dtype=torch.bool)
    mask[0, :3] = True
    mask[1, :] = True
    model_idx = torch.zeros(2, 1, dtype=torch.long)
    source_idx = torch.zeros(2, dtype=torch.long)
    for length_feature in (False, True):
        torch.manual_seed(1)
        model = LatentScorer(tiny_config(length_feature=length_feature)).eval()
        with torch.no_grad():
            model.head_w.normal_()
        out, _ = model(states, mask, model_idx, source_idx)
        same = torch.allclose(out.scores[0], out.scores[1], atol=1e-6)
        assert same != length_feature, f"length_feature={length_feature}: scores {out.scores.tolist()}"
    old = tiny_config().to_dict()
    del old["length_feature"]
    assert ModelConfig.from_dict(old).length_feature is False
