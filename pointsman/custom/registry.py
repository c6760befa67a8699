"""Deployed custom routers: ``custom deploy/list/delete`` and the lookup behind ``router@NAME|...``.

Deploying copies nothing: it writes ``<router dir>/deployed.json`` (atomically) naming the trained checkpoint
and the models the router chooses between. ``pointsman.router.Router`` asks ``find_deployed(NAME)`` for router
names it does not know, so ``router@NAME|q:1|c:...`` works in ``pointsman route`` and in the gateway; the
loaded scorer is cached per process and reloaded when ``deployed.json`` changes (a redeploy is picked up by a
running gateway without a restart).

A custom router scores only the models it was trained on (its ``models``), so ``router@NAME`` chooses among
them — on any provider that serves them — and not among the whole catalogue.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pointsman.custom.store import DB_FILE, CustomStore, check_name, custom_root, list_names, router_dir
from pointsman.errors import DataError, ScorerError, UnknownNameError
from pointsman.scorer.base import Prediction, Scorer

__all__ = [
    "CustomRouter",
    "RouterInfo",
    "delete_router",
    "deploy",
    "deployed_names",
    "find_deployed",
    "list_routers",
    "undeploy",
]

DEPLOYED = "deployed.json"


def _data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    if data_dir is not None:
        return Path(data_dir)
    from pointsman.settings import Settings

    return Settings().data_dir


class CustomRouter(Scorer):
    """A deployed custom router behind the Scorer interface: the fine-tuned neural scorer, restricted to the
    models it was trained for. ``name`` is the router's own name (see ``make``)."""

    name = "custom"
    own_models_only: ClassVar[bool] = True  # Router: candidates are these models, not the whole catalogue

    def __init__(self, inner: Scorer, models: Sequence[str]) -> None:
        self.inner = inner
        self._models = list(models)

    @staticmethod
    def make(router_name: str, inner: Scorer, models: Sequence[str]) -> CustomRouter:
        cls = type(f"CustomRouter[{router_name}]", (CustomRouter,), {"name": router_name})
        return cls(inner, models)

    @property
    def models(self) -> list[str]:
        return list(self._models)

    def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:
        self.check_models(models)
        return self.inner.predict(prompts, models)


@dataclass(frozen=True)
class RouterInfo:
    name: str
    prompts: int
    answers: int
    grades: int
    missing: int
    models: list[str]
    trained: bool
    deployed: bool
    spent_usd: str


def deploy(name: str, *, data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Make ``router@NAME`` usable. Needs a trained router (``custom train``)."""
    from pointsman.scorer.checkpoint import read_config

    directory = router_dir(_data_dir(data_dir), name)
    if not (directory / DB_FILE).exists():
        raise UnknownNameError("custom router", name, list_names(_data_dir(data_dir)), param="name")
    model_dir = directory / "model"
    if not (model_dir / "config.json").exists():
        raise ScorerError(
            f"custom router {name!r} is not trained yet; run 'pointsman custom train --name {name}' first"
        )
    _, meta = read_config(model_dir)
    models = list(meta.get("models") or [])
    if not models:
        raise ScorerError(
            f"{model_dir} does not say which models it routes between; retrain it with 'custom train'"
        )
    record = {"name": name, "checkpoint": "model", "models": models, "deployed_at": time.time()}
    tmp = directory / (DEPLOYED + ".tmp")
    tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    tmp.replace(directory / DEPLOYED)
    return record


def undeploy(name: str, *, data_dir: str | os.PathLike[str] | None = None) -> bool:
    path = router_dir(_data_dir(data_dir), name) / DEPLOYED
    if path.exists():
        path.unlink()
        return True
    return False


def delete_router(name: str, *, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Remove the router's directory: answers, grades, checkpoint, report, deployment."""
    root = _data_dir(data_dir)
    directory = router_dir(root, name)
    if not (directory / DB_FILE).exists():
        raise UnknownNameError("custom router", name, list_names(root), param="name")
    shutil.rmtree(directory)
    return directory


def list_routers(*, data_dir: str | os.PathLike[str] | None = None) -> list[RouterInfo]:
    root = _data_dir(data_dir)
    out = []
    for name in list_names(root):
        with CustomStore.open(root, name) as store:
            counts = store.counts()
            out.append(
                RouterInfo(
                    name=name,
                    prompts=counts["prompts"],
                    answers=counts["answers"],
                    grades=counts["grades"],
                    missing=counts["missing"],
                    models=sorted(store.endpoints()),
                    trained=(store.directory / "model" / "config.json").exists(),
                    deployed=(store.directory / DEPLOYED).exists(),
                    spent_usd=str(store.spent_usd()),
                )
            )
    return out


def deployed_names(*, data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    root = custom_root(_data_dir(data_dir))
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / DEPLOYED).exists())


_cache: dict[Path, tuple[int, CustomRouter]] = {}
_lock = threading.Lock()


def find_deployed(name: str, *, data_dir: str | os.PathLike[str] | None = None) -> CustomRouter | None:
    """The deployed custom router ``name``, or None when there is none by that name."""
    try:
        directory = router_dir(_data_dir(data_dir), check_name(name))
    except DataError:  # not a valid custom router name: not ours to resolve
        return None
    path = directory / DEPLOYED
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    with _lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            checkpoint = directory / str(record["checkpoint"])
            models = [str(m) for m in record["models"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ScorerError(
                f"{path} is damaged ({exc}); redeploy with 'pointsman custom deploy {name}'"
            ) from exc
        from pointsman.scorer.neural import NeuralScorer

        router = CustomRouter.make(name, NeuralScorer.load(checkpoint), models)
        _cache[path] = (stamp, router)
        return router
