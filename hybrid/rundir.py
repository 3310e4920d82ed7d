"""The run directory contract: where every stage reads and writes.

::

    RUN/config.yaml                    resolved config
    RUN/checkpoints/                   Lightning checkpoints; fit.json marks training done
    RUN/logs/metrics.csv               Lightning's CSV log
    RUN/features/{train,val,test}/     feature tables (hybrid.features.FeatureTable): X.npy,
                                       teacher.npy, ... and table.json (older runs: .npz)
    RUN/surrogates/NAME.json           surrogate files (hybrid.jsonio); distill.json marks done
    RUN/surrogates/sweep/NAME/B.json   the surrogate refitted at budget B, for the curve
    RUN/evidence/                      per-feature prototypes and attributions; evidence.json
    RUN/exports/NAME.{txt,md,json,dot,svg,py,sql}; index.json marks done
    RUN/metrics.json, RUN/report.md, RUN/report.html, RUN/figures/

Each stage is done when its marker exists; markers are written last and atomically, so a
killed run resumes at the stage it was in.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from . import _io
from .config import Config, config_to_yaml, load_config
from .errors import RunDirectoryError

__all__ = ["RunDirectory", "STAGES", "SPLITS"]

STAGES = ("fit", "extract", "distill", "evidence", "export", "report")
SPLITS = ("train", "val", "test")


class RunDirectory:
    """Paths and stage bookkeeping of one run directory."""

    def __init__(self, root):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.root)!r})"

    # -- paths -------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def features_dir(self) -> Path:
        return self.root / "features"

    @property
    def surrogates_dir(self) -> Path:
        return self.root / "surrogates"

    @property
    def evidence_dir(self) -> Path:
        return self.root / "evidence"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    def features(self, split: str) -> Path:
        """The folder of ``split``'s feature table; :meth:`FeatureTable.load
        <hybrid.features.FeatureTable.load>` also reads an older run's ``split.npz`` by it."""
        return self.features_dir / split

    def surrogate(self, name: str) -> Path:
        return self.surrogates_dir / f"{name}.json"

    def sweep_surrogate(self, name: str, budget) -> Path:
        return self.surrogates_dir / "sweep" / name / f"{budget}.json"

    def marker(self, stage: str) -> Path:
        """The file whose presence says ``stage`` finished."""
        return {
            "fit": self.checkpoints / "fit.json",
            "extract": self.features_dir / "index.json",
            "distill": self.surrogates_dir / "distill.json",
            "evidence": self.evidence_dir / "evidence.json",
            "export": self.exports_dir / "index.json",
            "report": self.report_html,
        }[stage]

    # -- stages ------------------------------------------------------------------------------
    def is_done(self, stage: str) -> bool:
        return self.marker(stage).exists()

    def require(self, stage: str) -> None:
        """Raise when ``stage`` has not finished, saying which command to run."""
        if not self.is_done(stage):
            raise RunDirectoryError(f"{self.root}: stage '{stage}' has not run yet; "
                                    f"run `hybrid {stage} {self.root}` first")

    def mark_done(self, stage: str, summary: dict) -> None:
        _io.write_json(self.marker(stage), summary)

    def read_marker(self, stage: str) -> dict:
        self.require(stage)
        return json.loads(self.marker(stage).read_text(encoding="utf-8"))

    def invalidate_from(self, stage: str) -> None:
        """Forget ``stage`` and every later one, so they run again."""
        for later in STAGES[STAGES.index(stage):]:
            self.marker(later).unlink(missing_ok=True)

    # -- config ------------------------------------------------------------------------------
    def load_config(self) -> Config:
        if not self.config_path.exists():
            raise RunDirectoryError(f"{self.root}: not a run directory (no config.yaml); "
                                    "start one with `hybrid run CONFIG --out DIR`")
        return load_config(self.config_path)

    def create(self, config: Config, overwrite: bool = False) -> None:
        """Make the directory for ``config``, or reuse it when it holds the same config.

        An existing run of another config, or a non-empty directory that is not a run, is
        never touched without ``overwrite``.
        """
        text = config_to_yaml(config)
        if self.root.exists() and any(self.root.iterdir()):
            if overwrite:
                shutil.rmtree(self.root)
            elif not self.config_path.exists():
                raise RunDirectoryError(f"{self.root} exists and is not a run directory; "
                                        "choose another --out or pass --overwrite")
            elif config_to_yaml(self.load_config()) != text:  # a newer default is no change
                raise RunDirectoryError(
                    f"{self.root} holds a run of a different config "
                    f"({_first_difference(self.load_config(), config)}); "
                    "pass --overwrite to replace it or choose another --out")
            else:
                return
        self.root.mkdir(parents=True, exist_ok=True)
        _io.write_text(self.config_path, text)


def _first_difference(old: Config, new: Config) -> str:
    """'key: old -> new' for the first differing leaf of two configs."""
    def leaves(value, prefix=""):
        if isinstance(value, dict):
            for key, item in value.items():
                yield from leaves(item, f"{prefix}{key}.")
        else:
            yield prefix.rstrip("."), value

    old_leaves, new_leaves = dict(leaves(old.model_dump(mode="json"))), dict(leaves(new.model_dump(mode="json")))
    for key in sorted(old_leaves.keys() | new_leaves.keys()):
        if old_leaves.get(key) != new_leaves.get(key):
            return f"{key}: {old_leaves.get(key)!r} -> {new_leaves.get(key)!r}"
    return "same values, different text"
