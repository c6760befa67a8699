"""The torch-native BERT encoder against transformers' BertModel and AutoTokenizer, and the loading errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _scorer_tiny import tiny_encoder_dir

from pointsman.errors import ScorerError
from pointsman.scorer import encoder as encoder_module
from pointsman.scorer.bert import BertConfig, WordPieceTokenizer, is_native_bert_dir, load_bert
from pointsman.scorer.encoder import (
    BACKEND_ENV,
    LoadedEncoder,
    embed_texts,
    load_encoder,
    resolve_encoder_path,
)
from pointsman.scorer.states import encode_states, tokenize_prompts

TEXTS = [
    "",
    "   ",
    "Hello, World!",
    "Ünïcödé café naïve Æsir straße",
    "日本語のテキストと中文字符",
    "emoji 🚀🔥 and symbols ∑∫√ ≤ ≥ ©®",
    "tabs\tand\nnewlines\r\nand \u00a0non-breaking\u200bzero-width",
    "control \x00\x07 chars and a soft\u00adhyphen",
    "def f(x):\n    return x ** 2  # square\n",
    "a" * 150 + " averyveryveryveryveryverylongwordthatwordpiecemustsplitintopieces",
    "Numbers 3.14159, 1e-10, -42 and 1,000,000; URLs https://example.com/a?b=c#d",
    "MIXED case ÀÉÎÕÜ ñ ç ΑΒΓ δεζ Кириллица עברית العربية",
    "[CLS] [SEP] [PAD] [MASK] [UNK] literal specials",
    "Write a poem about rain. " * 100,
]


@pytest.fixture(autouse=True)
def _default_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BACKEND_ENV, raising=False)


@pytest.fixture(scope="module")
def native() -> LoadedEncoder:
    enc = load_encoder(backend="auto")
    assert enc.backend == "native"
    return enc


@pytest.fixture(scope="module")
def hf() -> LoadedEncoder:
    pytest.importorskip("transformers")
    enc = load_encoder(backend="transformers")
    assert enc.backend == "transformers"
    return enc


def _batch(ids: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(r) for r in ids)
    input_ids = torch.full((len(ids), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), longest), dtype=torch.long)
    for row, r in enumerate(ids):
        input_ids[row, : len(r)] = torch.tensor(r)
        mask[row, : len(r)] = 1
    return input_ids, mask


def test_token_ids_match_autotokenizer(native: LoadedEncoder, hf: LoadedEncoder) -> None:
    hf_tok = hf.tokenizer.hf  # type: ignore[attr-defined]
    want = hf_tok(TEXTS, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    got = native.tokenizer.encode(TEXTS)
    assert got == [list(w) for w in want]
    assert any(len(g) > 512 for g in got) and got[0] == [] and got[1] == []
    for role in ("cls", "sep", "pad"):
        assert getattr(native.tokenizer, f"{role}_token_id") == getattr(hf_tok, f"{role}_token_id")
    with_specials = hf_tok(TEXTS[2:5])["input_ids"]
    ours, _ = tokenize_prompts(native, TEXTS[2:5], max_tokens=512)
    assert ours == [list(w) for w in with_specials]


def test_hidden_states_match_bertmodel(native: LoadedEncoder, hf: LoadedEncoder) -> None:
    """A padded batch with an empty prompt, unicode and a full 512-token prompt, fp32, within 1e-4."""
    prompts = ["", "Which number is the largest: 3, 9 or 4?", TEXTS[3], TEXTS[4], TEXTS[5], TEXTS[-1]]
    ids, cut = tokenize_prompts(native, prompts, max_tokens=512)
    assert len(ids[-1]) == 512 and cut[-1] and len(ids[0]) == 2
    input_ids, mask = _batch(ids, native.tokenizer.pad_token_id)
    with torch.inference_mode():
        ours = native.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        theirs = hf.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        alone = native.model(input_ids=input_ids[:1, :2]).last_hidden_state  # no mask, no padding
    assert ours.dtype == torch.float32 and ours.shape == (6, 512, 384)
    keep = mask.bool()
    worst = (ours - theirs).abs()[keep].max().item()
    assert worst <= 1e-4, f"native vs transformers differ by {worst}"
    assert (alone[0] - theirs[0, :2]).abs().max().item() <= 1e-4


def test_embeddings_and_states_match_across_backends(native: LoadedEncoder, hf: LoadedEncoder) -> None:
    texts = [*TEXTS[:6], TEXTS[-1]]
    a = embed_texts(native, texts, max_tokens=64, batch_size=4)
    b = embed_texts(hf, texts, max_tokens=64, batch_size=4)
    assert a.shape == (7, 384) and np.abs(a - b).max() <= 1e-4
    assert embed_texts(native, []).shape == (0, 384)
    for x, y in zip(
        encode_states(native, texts, max_tokens=64), encode_states(hf, texts, max_tokens=64), strict=True
    ):
        assert x.shape == y.shape and x.dtype == torch.float16
        assert (x.float() - y.float()).abs().max().item() <= 2e-3  # both rounded to fp16


def test_tiny_bert_dir_loads_natively_and_through_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tiny_encoder_dir()
    assert is_native_bert_dir(directory)
    native = load_encoder(directory)
    monkeypatch.setenv(BACKEND_ENV, "transformers")
    forced = load_encoder(directory)
    assert (native.backend, forced.backend) == ("native", "transformers")
    assert native.hidden_size == forced.hidden_size == 32
    prompts = ["short", "a somewhat longer prompt about castles", ""]
    for x, y in zip(
        encode_states(native, prompts, max_tokens=32),
        encode_states(forced, prompts, max_tokens=32),
        strict=True,
    ):
        assert (x.float() - y.float()).abs().max().item() <= 2e-3
    monkeypatch.setenv(BACKEND_ENV, "gpu")
    with pytest.raises(ScorerError, match="unknown encoder backend 'gpu'"):
        load_encoder(directory)


def _copy_tiny(tmp_path: Path) -> Path:
    out = tmp_path / "enc"
    shutil.copytree(tiny_encoder_dir(), out)
    return out


def test_wrong_sha256_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder_module, "MINILM_SHA256", "0" * 64)
    with pytest.raises(ScorerError, match=r"expected 0{64}; the packaged weights were altered"):
        encoder_module._verified_packaged_dir.__wrapped__()  # type: ignore[attr-defined]


def test_missing_files_give_clear_errors(tmp_path: Path) -> None:
    directory = _copy_tiny(tmp_path)
    (directory / "model.safetensors").rename(tmp_path / "weights")
    assert not is_native_bert_dir(directory)
    with pytest.raises(ScorerError, match=r"model\.safetensors is missing"):
        load_encoder(str(directory), backend="native")
    (tmp_path / "weights").rename(directory / "model.safetensors")
    (directory / "tokenizer.json").unlink()
    with pytest.raises(ScorerError, match=r"cannot read .*tokenizer\.json"):
        load_encoder(str(directory), backend="native")
    (directory / "config.json").unlink()
    with pytest.raises(ScorerError, match=r"config\.json is missing"):
        load_encoder(str(directory), backend="native")
    with pytest.raises(ScorerError, match="loads local BERT directories only"):
        load_encoder("someone/some-hub-model", backend="native")


def test_non_bert_config_is_refused_natively(tmp_path: Path) -> None:
    directory = _copy_tiny(tmp_path)
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "model_type": "roberta"}))
    assert not is_native_bert_dir(directory)  # auto would hand it to transformers
    with pytest.raises(ScorerError, match="describes a 'roberta' model, not 'bert'"):
        load_encoder(str(directory), backend="native")
    for key, value, message in (
        ("position_embedding_type", "relative_key", "position_embedding_type 'relative_key'"),
        ("hidden_act", "swish", "hidden_act 'swish'"),
    ):
        (directory / "config.json").write_text(json.dumps({**config, key: value}))
        with pytest.raises(ScorerError, match=message):
            BertConfig.from_json(directory)
    (directory / "config.json").write_text("{not json")
    with pytest.raises(ScorerError, match="not a readable JSON config"):
        BertConfig.from_json(directory)
    (directory / "config.json").write_text("[1, 2]")
    with pytest.raises(ScorerError, match="not a JSON object"):
        BertConfig.from_json(directory)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    directory = _copy_tiny(tmp_path)
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "hidden_size": 64}))
    with pytest.raises(ScorerError, match=r"config\.json implies"):
        load_bert(directory)
    (directory / "config.json").write_text(json.dumps(config))
    tensors = load_file(str(directory / "model.safetensors"))
    renamed = {("bert." + k if "word_embeddings" in k else k): v for k, v in tensors.items()}
    save_file(renamed, str(directory / "model.safetensors"))
    assert load_bert(directory).config.hidden_size == 32  # a 'bert.' prefix (BertFor*) is mapped
    del renamed["bert.embeddings.word_embeddings.weight"]
    renamed["encoder.layer.0.extra.weight"] = torch.zeros(1)
    save_file(renamed, str(directory / "model.safetensors"))
    with pytest.raises(ScorerError, match=r"missing: embeddings\.word\.weight; unexpected: blocks\.0\.extra"):
        load_bert(directory)
    (directory / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ScorerError, match="cannot read"):
        load_bert(directory)


def test_tokenizer_without_bert_specials_is_refused(tmp_path: Path) -> None:
    directory = _copy_tiny(tmp_path)
    (directory / "tokenizer_config.json").write_text(json.dumps({"cls_token": "<s>"}))
    with pytest.raises(ScorerError, match="has no '<s>' token"):
        WordPieceTokenizer(directory)


def test_default_route_does_not_import_transformers(tmp_path: Path) -> None:
    """A cold `pointsman route` with the neural default loads torch and the native MiniLM, never transformers."""
    script = (
        "import sys\n"
        "from pointsman.cli.app import main\n"
        "sys.argv = ['pointsman', 'route', 'Which number is the largest: 3, 9 or 4?', '--json']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('IMPORTED', 'torch' in sys.modules, 'transformers' in sys.modules, file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("POINTSMAN_")}
    env |= {"XDG_CONFIG_HOME": str(tmp_path / "config"), "POINTSMAN_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "IMPORTED True False" in done.stderr, done.stderr
    assert json.loads(done.stdout)  # the route was printed
    assert "Loading weights" not in done.stderr


def test_packaged_path_resolves_to_verified_dir() -> None:
    assert is_native_bert_dir(resolve_encoder_path("all-MiniLM-L6-v2"))


def test_native_loading_and_encoding_print_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    """The gateway warms the scorer at startup; the native path must not write progress bars or warnings."""
    enc = load_encoder()
    encode_states(enc, ["Which number is the largest: 3, 9 or 4?", ""], max_tokens=64)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_other_bert_weight_namings_load_to_the_same_model(tmp_path: Path) -> None:
    """BertFor* checkpoints ('bert.' prefix, pooler and heads) and old ones (LayerNorm.gamma/beta) map onto ours."""
    from safetensors.torch import load_file, save_file

    directory = _copy_tiny(tmp_path)
    reference = load_bert(directory)
    tensors = load_file(str(directory / "model.safetensors"))
    renamed = {
        "bert."
        + k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
        for k, v in tensors.items()
        if not k.startswith("pooler.")
    }
    renamed |= {
        "bert.pooler.dense.weight": torch.zeros(32, 32),
        "cls.predictions.bias": torch.zeros(5),
        "bert.embeddings.position_ids": torch.arange(512)[None],
    }
    save_file(renamed, str(directory / "model.safetensors"))
    assert any("gamma" in k for k in renamed)
    loaded = load_bert(directory)
    ids = torch.tensor([[101, 7592, 2088, 102]])
    with torch.inference_mode():
        torch.testing.assert_close(
            loaded(ids).last_hidden_state, reference(ids).last_hidden_state, atol=0.0, rtol=0.0
        )
