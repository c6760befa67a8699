"""Checkpoints that carry their own config: ``model.safetensors`` + ``config.json`` in one directory.

An ensemble (``pointsman.scorer.ensemble``) is one checkpoint too: its members' weights sit side by side in
``model.safetensors`` (``members.0.*``, ``members.1.*``, ...) under their one shared config, and ``config.json``
says how many there are (``"members": K``).

A training checkpoint also holds ``train_state.pt`` (optimizer, step, best validation loss, RNG states) so that
``pointsman train --resume`` continues after a crash from exactly where the last checkpoint was written. The
shipped default keeps only the weights and the config.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from pointsman.errors import ScorerError
from pointsman.scorer.ensemble import ReadOut, ScorerEnsemble
from pointsman.scorer.model import LatentScorer, ModelConfig

__all__ = ["load_model", "load_train_state", "save_model", "save_train_state"]

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TRAIN_STATE = "train_state.pt"


def save_model(
    model: ReadOut,
    directory: str | os.PathLike[str],
    *,
    meta: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write weights and config atomically enough for a crash: files go to temporary names, then move."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if half:
        tensors = {k: v.half() for k, v in tensors.items()}
    save_file(tensors, str(d / (WEIGHTS + ".tmp")))
    config: dict[str, Any] = {"model": model.config.to_dict(), "meta": meta or {}}
    if isinstance(model, ScorerEnsemble):
        config["members"] = len(model.members)
    (d / (CONFIG + ".tmp")).write_text(json.dumps(config, indent=2, sort_keys=True))
    (d / (WEIGHTS + ".tmp")).replace(d / WEIGHTS)
    (d / (CONFIG + ".tmp")).replace(d / CONFIG)
    return d


def read_config(directory: str | os.PathLike[str]) -> tuple[ModelConfig, dict[str, Any]]:
    """The (member) model config and the meta of a checkpoint."""
    cfg, meta, _ = _read(directory)
    return cfg, meta


def _read(directory: str | os.PathLike[str]) -> tuple[ModelConfig, dict[str, Any], int]:
    d = Path(directory)
    path = d / CONFIG
    if not path.exists():
        raise ScorerError(
            f"{d} is not a scorer checkpoint ({CONFIG} is missing); give a directory written by 'pointsman train'"
        )
    try:
        data = json.loads(path.read_text())
        members = data.get("members", 1)
        if not isinstance(members, int) or isinstance(members, bool) or members < 1:
            raise TypeError(f"'members' must be a whole number >= 1, got {members!r}")
        return ModelConfig.from_dict(data["model"]), dict(data.get("meta", {})), members
    except (json.JSONDecodeError, KeyError, TypeError, AssertionError) as exc:
        raise ScorerError(
            f"{path} is not a valid scorer config ({exc}); retrain or restore the file"
        ) from exc


def load_model(directory: str | os.PathLike[str]) -> tuple[ReadOut, dict[str, Any]]:
    """Rebuild the model (one scorer, or an ensemble of them) from its config and load its weights (float32,
    eval mode)."""
    from safetensors.torch import load_file

    cfg, meta, members = _read(directory)
    weights = Path(directory) / WEIGHTS
    if not weights.exists():
        raise ScorerError(f"{weights} is missing; the checkpoint is incomplete — retrain or restore it")
    model: ReadOut = (
        LatentScorer(cfg) if members == 1 else ScorerEnsemble([LatentScorer(cfg) for _ in range(members)])
    )
    try:
        tensors = load_file(str(weights))
        model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    except (RuntimeError, OSError) as exc:
        raise ScorerError(f"{weights} does not fit {Path(directory) / CONFIG} ({exc}); retrain") from exc
    model.eval()
    return model, meta


def save_train_state(directory: str | os.PathLike[str], state: dict[str, Any]) -> None:
    d = Path(directory)
    torch.save(state, d / (TRAIN_STATE + ".tmp"))
    (d / (TRAIN_STATE + ".tmp")).replace(d / TRAIN_STATE)


def load_train_state(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    path = Path(directory) / TRAIN_STATE
    if not path.exists():
        return None
    try:
        state: dict[str, Any] = torch.load(path, weights_only=False)
    except (RuntimeError, OSError, EOFError) as exc:
        raise ScorerError(f"{path} is corrupt ({exc}); delete it to start over") from exc
    return state
