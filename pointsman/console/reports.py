"""The Router panel's data: quality–cost curves from evaluation reports.

A report is the ``report.json`` that ``pointsman eval --out DIR`` writes (or a custom router's report, same
shape). The console reads the files listed in ``[console] reports`` (files or directories holding a
``report.json``) and every ``report.json`` under ``<data dir>/reports/`` and ``<data dir>/custom/``, and shows the
newest one that evaluates the active router (else the newest). Reading is cached by file modification time, so a
new report shows up on the next page load.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pointsman.errors import DataError

__all__ = [
    "CurveReport",
    "DatasetCurves",
    "ReportCache",
    "RouterCurve",
    "custom_router_name",
    "find_reports",
    "load_report",
    "newest_report",
]


@dataclass(frozen=True)
class RouterCurve:
    name: str
    points: list[tuple[float, float]]  # (mean cost per prompt in USD, mean quality)
    aiq: float | None = None
    apgr: float | None = None


@dataclass(frozen=True)
class DatasetCurves:
    name: str
    n_prompts: int
    routers: list[RouterCurve]
    singles: list[tuple[str, float, float]]  # (model, cost per prompt USD, quality)
    best_single: str | None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CurveReport:
    path: Path
    mtime: float
    command: str
    datasets: list[DatasetCurves]


def find_reports(configured: Iterable[Path], data_dir: Path) -> list[Path]:
    """Every ``report.json`` named by the config (files or directories) or found under the data directory's
    ``reports/`` and ``custom/`` folders, without duplicates."""
    found: dict[Path, None] = {}
    for path in configured:
        candidate = path / "report.json" if path.is_dir() else path
        if candidate.is_file():
            found[candidate.resolve()] = None
    for folder in (data_dir / "reports", data_dir / "custom"):
        if folder.is_dir():
            for candidate in sorted(folder.glob("**/report.json")):
                # skip reports still being written (``.report.xyz`` temporaries, ``report.new`` staging)
                parts = candidate.relative_to(folder).parts[:-1]
                if not any(p.startswith(".") or p.endswith(".new") for p in parts):
                    found[candidate.resolve()] = None
    return list(found)


def custom_router_name(report: Path, data_dir: Path) -> str | None:
    """NAME when ``report`` lies under ``<data dir>/custom/NAME/`` (a custom router's own report)."""
    try:
        parts = report.resolve().relative_to((data_dir / "custom").resolve()).parts
    except ValueError:
        return None
    return parts[0] if len(parts) > 1 else None


def _finite(x: Any) -> float | None:
    if isinstance(x, int | float) and math.isfinite(float(x)):
        return float(x)
    return None


def _dataset(raw: dict[str, Any], path: Path) -> DatasetCurves:
    try:
        routers = []
        for name, r in (raw.get("routers") or {}).items():
            pts = [(float(p["cost_usd"]), float(p["quality"])) for p in r.get("points") or ()]
            routers.append(RouterCurve(name, pts, _finite(r.get("aiq")), _finite(r.get("apgr"))))
        singles = [
            (str(s["model"]), float(s["cost_usd"]), float(s["quality"])) for s in raw.get("singles") or ()
        ]
        best = (raw.get("best_single") or {}).get("model")
        return DatasetCurves(
            name=str(raw.get("dataset") or "dataset"),
            n_prompts=int(raw.get("n_prompts") or 0),
            routers=routers,
            singles=singles,
            best_single=str(best) if best else None,
            notes=[str(n) for n in raw.get("notes") or ()],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(
            f"not a Pointsman evaluation report ({type(exc).__name__}: {exc}); write one with "
            "`pointsman eval --data FILE --out DIR` and point [console] reports at DIR",
            path=str(path),
        ) from exc


def load_report(path: Path) -> CurveReport:
    """Parse one ``report.json``; a file that is not one raises DataError naming it and the fix."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        mtime = path.stat().st_mtime
    except (OSError, ValueError) as exc:
        raise DataError(
            f"cannot read the evaluation report ({exc}); rerun `pointsman eval --out DIR`", path=str(path)
        ) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("datasets"), list):
        raise DataError(
            "not a Pointsman evaluation report (no 'datasets' list); write one with "
            "`pointsman eval --data FILE --out DIR`",
            path=str(path),
        )
    return CurveReport(
        path=path,
        mtime=mtime,
        command=str(raw.get("command") or ""),
        datasets=[_dataset(d, path) for d in raw["datasets"]],
    )


class ReportCache:
    """Parsed reports by path, re-read when the file changes."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[float, CurveReport]] = {}

    def newest(self, paths: Sequence[Path]) -> CurveReport | None:
        return newest_report(paths, self)

    def get(self, path: Path) -> CurveReport:
        mtime = path.stat().st_mtime
        hit = self._cache.get(path)
        if hit is not None and hit[0] == mtime:
            return hit[1]
        report = load_report(path)
        self._cache[path] = (mtime, report)
        return report


def newest_report(paths: Sequence[Path], cache: ReportCache | None = None) -> CurveReport | None:
    """The most recently written report among ``paths`` (None when there are none)."""
    existing = [p for p in paths if p.is_file()]
    if not existing:
        return None
    newest = max(existing, key=lambda p: p.stat().st_mtime)
    return cache.get(newest) if cache is not None else load_report(newest)
