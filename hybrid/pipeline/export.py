"""Stage 5, export: every surrogate in every configured format under ``RUN/exports/``.

Reads the surrogate JSON files only: exporting never imports torch.
"""

import logging

from .. import _io
from ..config import Config
from ..exporters import EXPORTERS, SUFFIXES, dot_available
from ..jsonio import load_surrogate
from ..rundir import RunDirectory

__all__ = ["export", "check_export_config"]

log = logging.getLogger("hybrid")


def check_export_config(config: Config) -> None:
    for name in config.export.formats:
        EXPORTERS.get(name)


def export(run: RunDirectory) -> dict:
    config = run.load_config()
    check_export_config(config)
    run.require("distill")
    written, skipped = [], {}
    for key in config.surrogates:
        model = load_surrogate(run.surrogate(key))
        for name in config.export.formats:
            if name == "svg" and not dot_available():
                skipped[name] = "Graphviz's dot is not installed (apt-get install -y graphviz)"
                continue
            path = run.exports_dir / f"{key}{SUFFIXES[name]}"
            _io.write_text(path, EXPORTERS.get(name)(model))
            written.append(str(path.relative_to(run.root)))
    for name, reason in skipped.items():
        log.warning("export: skipped %s: %s", name, reason)
    log.info("export: %d files in %s", len(written), run.exports_dir)
    summary = {"files": written, "skipped": skipped}
    run.mark_done("export", summary)
    return summary
