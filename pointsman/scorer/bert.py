"""A small torch-native BERT encoder and its WordPiece tokenizer, for the frozen encoder the scorer reads.

Importing ``transformers``' BERT code costs seconds per process (it pulls in torch._dynamo, sympy and scipy),
while the scorer only needs a BERT forward pass. This module is that forward pass: a ``@dataclass`` config read
from the checkpoint's ``config.json``, a few small modules (post-LayerNorm blocks, attention through
``torch.nn.functional.scaled_dot_product_attention``), weights from ``model.safetensors`` with any
``BertModel`` / ``Bert*`` naming mapped onto ours, and the tokenizer from ``tokenizer.json`` through the
``tokenizers`` library. On MiniLM-L6 its float32 last hidden states are within 5e-6 of ``transformers.BertModel``'s
(values up to ~6; a test holds it to 1e-4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pointsman.errors import ScorerError

__all__ = ["BertConfig", "BertEncoder", "BertOutput", "WordPieceTokenizer", "is_native_bert_dir", "load_bert"]

_ACTIVATIONS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu_fast": "tanh"}


@dataclass
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"

    @classmethod
    def from_json(cls, path: str | Path) -> BertConfig:
        """The config of a BERT checkpoint directory (or its ``config.json``); extra keys are ignored."""
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ScorerError(f"{path} is missing; a BERT encoder directory needs its config.json") from exc
        except (OSError, ValueError) as exc:
            raise ScorerError(f"{path} is not a readable JSON config ({exc}); restore the file") from exc
        if not isinstance(raw, dict):
            raise ScorerError(f"{path} is not a JSON object; restore the file")
        if raw.get("model_type") != "bert":
            raise ScorerError(
                f"{path} describes a {raw.get('model_type')!r} model, not 'bert'; the native encoder reads BERT "
                "checkpoints only (set POINTSMAN_ENCODER_BACKEND=transformers for other architectures)"
            )
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise ScorerError(
                f"{path}: position_embedding_type {raw['position_embedding_type']!r} is not supported natively "
                "(only 'absolute'); set POINTSMAN_ENCODER_BACKEND=transformers"
            )
        if raw.get("hidden_act", "gelu") not in _ACTIVATIONS:
            raise ScorerError(
                f"{path}: hidden_act {raw['hidden_act']!r} is not supported natively (known: "
                f"{', '.join(_ACTIVATIONS)}); set POINTSMAN_ENCODER_BACKEND=transformers"
            )
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def __post_init__(self) -> None:
        assert self.hidden_size % self.num_attention_heads == 0, (
            f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
        )


@dataclass
class BertOutput:
    last_hidden_state: torch.Tensor  # (B, T, C)


class _Linear(nn.Linear):
    """``nn.Linear`` left uninitialised: its weights always come from a checkpoint (``load_bert``), and the
    random init it would run costs ~0.15 s of every cold start for MiniLM."""

    def reset_parameters(self) -> None:
        return None


class _Embedding(nn.Embedding):
    """``nn.Embedding`` left uninitialised, like ``_Linear``."""

    def reset_parameters(self) -> None:
        return None


class Embeddings(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        C = config.hidden_size
        self.word = _Embedding(config.vocab_size, C)
        self.position = _Embedding(config.max_position_embeddings, C)
        self.token_type = _Embedding(config.type_vocab_size, C)
        self.ln = nn.LayerNorm(C, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        T = input_ids.shape[1]
        assert self.position.num_embeddings >= T, (
            f"{T} tokens is longer than the encoder's {self.position.num_embeddings} positions"
        )
        pos = torch.arange(T, device=input_ids.device)  # (T,)
        x = self.word(input_ids) + self.position(pos)  # (B, T, C)
        types = self.token_type.weight[0] if token_type_ids is None else self.token_type(token_type_ids)
        x = x + types  # (B, T, C)
        return self.ln(x)  # (B, T, C)


class SelfAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        C = config.hidden_size
        self.n_head = config.num_attention_heads
        self.query = _Linear(C, C)
        self.key = _Linear(C, C)
        self.value = _Linear(C, C)
        self.proj = _Linear(C, C)
        self.ln = nn.LayerNorm(C, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        B, T, C = x.shape
        H = self.n_head

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, T, H, C // H).transpose(1, 2)  # (B, H, T, C/H)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (B, H, T, C/H)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.ln(x + self.proj(y))  # post-LayerNorm, as in BERT


class FeedForward(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.fc = _Linear(config.hidden_size, config.intermediate_size)
        self.proj = _Linear(config.intermediate_size, config.hidden_size)
        self.ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.approximate = _ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.fc(x), approximate=self.approximate)  # (B, T, 4C)
        return self.ln(x + self.proj(h))  # (B, T, C)


class Block(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attn = SelfAttention(config)
        self.mlp = FeedForward(config)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        return self.mlp(self.attn(x, keep))  # (B, T, C)


class BertEncoder(nn.Module):
    """``BertModel`` without the pooler: ``forward(input_ids, attention_mask) -> BertOutput``. Built with
    uninitialised weights: ``load_bert`` fills every one from the checkpoint."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> BertOutput:
        assert input_ids.dim() == 2, f"input_ids must be (B, T), got shape {tuple(input_ids.shape)}"
        keep = None
        if attention_mask is not None:
            assert attention_mask.shape == input_ids.shape, "attention_mask must have input_ids' shape (B, T)"
            assert bool(attention_mask.any(dim=1).all()), "every row needs at least one unmasked token"
            if not bool(attention_mask.all()):  # without padding SDPA may take its fastest kernel
                keep = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T) True = attend
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, C)
        for block in self.blocks:
            x = block(x, keep)
        return BertOutput(last_hidden_state=x)


def _our_name(name: str) -> str | None:
    """Our parameter name for a Hugging Face BERT weight name, or None for weights we do not use."""
    name = name.removeprefix("bert.")  # BertForMaskedLM, BertForSequenceClassification, ...
    if name.startswith(("pooler.", "cls.", "lm_head.", "classifier.")) or name.endswith("position_ids"):
        return None
    name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
    name = (
        name.replace("embeddings.word_embeddings.", "embeddings.word.")
        .replace("embeddings.position_embeddings.", "embeddings.position.")
        .replace("embeddings.token_type_embeddings.", "embeddings.token_type.")
        .replace("embeddings.LayerNorm.", "embeddings.ln.")
        .replace("encoder.layer.", "blocks.")
        .replace(".attention.self.", ".attn.")
        .replace(".attention.output.dense.", ".attn.proj.")
        .replace(".attention.output.LayerNorm.", ".attn.ln.")
        .replace(".intermediate.dense.", ".mlp.fc.")
        .replace(".output.dense.", ".mlp.proj.")
        .replace(".output.LayerNorm.", ".mlp.ln.")
    )
    return name


def load_bert(directory: str | Path) -> BertEncoder:
    """A BERT encoder in eval mode from ``directory`` (``config.json`` and ``model.safetensors``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    config = BertConfig.from_json(directory)
    weights = directory / "model.safetensors"
    if not weights.exists():
        raise ScorerError(
            f"{weights} is missing; the native BERT encoder reads safetensors weights (convert the checkpoint, "
            "or set POINTSMAN_ENCODER_BACKEND=transformers)"
        )
    try:
        tensors = load_file(str(weights))
    except (OSError, SafetensorError) as exc:
        raise ScorerError(f"cannot read {weights} ({exc}); restore or re-download the file") from exc
    state: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        ours = _our_name(name)
        if ours is not None:
            state[ours] = tensor.float()
    model = BertEncoder(config)  # on the CPU: a meta-device build would import torch._dynamo (1.5 s)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ScorerError(
            f"{weights} does not fit a BERT encoder of its config.json (missing: {', '.join(missing[:5]) or '-'}; "
            f"unexpected: {', '.join(unexpected[:5]) or '-'}); check the checkpoint or set "
            "POINTSMAN_ENCODER_BACKEND=transformers"
        )
    for name, tensor in state.items():
        want = model.state_dict()[name].shape
        if tensor.shape != want:
            raise ScorerError(
                f"{weights}: {name} has shape {tuple(tensor.shape)}, config.json implies {tuple(want)}; "
                "the config and the weights do not belong together"
            )
    model.load_state_dict(state, assign=True)
    return model.eval().requires_grad_(False)


def _token_name(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class WordPieceTokenizer:
    """BERT's tokenizer from ``tokenizer.json`` (the ``tokenizers`` library), with the few things the scorer
    needs: ids without special tokens and the [CLS]/[SEP]/[PAD] ids."""

    def __init__(self, directory: str | Path) -> None:
        from tokenizers import Tokenizer

        directory = Path(directory)
        path = directory / "tokenizer.json"
        try:
            self._tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception for a missing or malformed file
            raise ScorerError(
                f"cannot read {path} ({exc}); the directory needs a fast-tokenizer file"
            ) from exc
        self._tok.no_truncation()  # tokenizer.json may carry a training-time limit and padding; we cut ourselves
        self._tok.no_padding()
        names = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]"}
        for extra in ("special_tokens_map.json", "tokenizer_config.json"):
            if (directory / extra).exists():
                try:
                    meta = json.loads((directory / extra).read_text(encoding="utf-8"))
                except ValueError as exc:
                    raise ScorerError(f"{directory / extra} is not valid JSON ({exc}); restore it") from exc
                for key in names:
                    names[key] = _token_name(meta.get(key)) or names[key]
                break
        ids: dict[str, int] = {}
        for key, token in names.items():
            found = self._tok.token_to_id(token)
            if found is None:
                raise ScorerError(f"{path} has no {token!r} token ({key}); is this a BERT tokenizer?")
            ids[key] = found
        self.cls_token_id = ids["cls_token"]
        self.sep_token_id = ids["sep_token"]
        self.pad_token_id = ids["pad_token"]

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, without [CLS]/[SEP] and untruncated."""
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]


def is_native_bert_dir(directory: str | Path) -> bool:
    """Whether ``directory`` holds a BERT checkpoint this module can load (config says bert, tokenizer.json and
    model.safetensors present)."""
    directory = Path(directory)
    try:
        raw = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(raw, dict)
        and raw.get("model_type") == "bert"
        and (directory / "tokenizer.json").exists()
        and (directory / "model.safetensors").exists()
    )
