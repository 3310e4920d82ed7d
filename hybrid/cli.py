"""The ``hybrid`` command: the whole pipeline (``run``) or one stage over a run directory.

User errors (config, files, names) print one line and exit with code 2; bugs keep their
traceback.
"""

import argparse
import logging
import sys
from pathlib import Path

from .errors import HybridError

__all__ = ["main", "build_parser"]



class _CurrentStderrHandler(logging.StreamHandler):
    """Writes each record to ``sys.stderr`` as it is then (tests and notebooks replace it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


_HANDLER = _CurrentStderrHandler()

_STAGE_HELP = {
    "fit": ("train the CNN (PyTorch Lightning); keeps the best checkpoint on validation",
            "hybrid fit configs/digits.yaml --out runs/digits\n  hybrid fit runs/digits"),
    "extract": ("write embeddings, CNN probabilities, teacher and true labels per split",
                "hybrid extract runs/digits"),
    "distill": ("fit the tree, rule list and sparse linear surrogates to the CNN's labels",
                "hybrid distill runs/digits"),
    "export": ("write each surrogate as text, Markdown, JSON, DOT and SVG",
               "hybrid export runs/digits"),
    "report": ("measure fidelity; write metrics.json, report.md and report.html",
               "hybrid report runs/digits"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybrid",
        description="Train an image classifier, then distill it into models a person can read.",
        epilog="example:\n  hybrid run configs/digits.yaml            # all stages into runs/digits\n"
               "  hybrid run configs/digits.yaml --set trainer.max_epochs=5 --out runs/quick\n"
               "Each stage is also its own command over a run directory; see hybrid STAGE --help.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    run = verbs.add_parser(
        "run", help="run every stage: fit, extract, distill, export, report",
        description="Run every stage for CONFIG. An interrupted run resumes where it stopped "
                    "when started again with the same config.",
        epilog="example:\n  hybrid run configs/digits.yaml --out runs/digits --set seed=1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_config_arguments(run)
    for stage, (summary, example) in _STAGE_HELP.items():
        sub = verbs.add_parser(stage, help=summary, description=summary[0].upper() + summary[1:] + ".",
                               epilog=f"example:\n  {example}",
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        if stage == "fit":
            _add_config_arguments(sub, accepts_run=True)
        else:
            sub.add_argument("run_dir", metavar="RUN", type=Path, help="a run directory")
            sub.add_argument("--overwrite", action="store_true", help="redo this stage if done")
    return parser


def _add_config_arguments(parser, accepts_run=False) -> None:
    parser.add_argument("config", metavar="CONFIG|RUN" if accepts_run else "CONFIG", type=Path,
                        help="a YAML config" + (", or an existing run directory" if accepts_run else ""))
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<config name>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set trainer.max_epochs=5 (repeatable)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing run directory instead of resuming it")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    _log_to_stderr()
    try:
        _dispatch(args)
    except HybridError as exc:
        print(f"hybrid: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hybrid: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def _log_to_stderr() -> None:
    """Show hybrid's own progress lines; other libraries keep their logging as they set it."""
    log = logging.getLogger("hybrid")
    if _HANDLER not in log.handlers:
        _HANDLER.setFormatter(logging.Formatter("hybrid: %(message)s"))
        log.addHandler(_HANDLER)
    log.setLevel(logging.INFO)
    log.propagate = False


def _dispatch(args) -> None:
    from .pipeline import run_pipeline, run_stage, start_run
    from .rundir import RunDirectory

    if args.verb == "run":
        run = start_run(args.config, args.out, args.overrides, args.overwrite)
        run_pipeline(run)
        print(f"hybrid: done: {run.root}/report.html")
    elif args.verb == "fit":
        if args.config.is_dir():
            run_stage(RunDirectory(args.config), "fit", redo=args.overwrite)
        else:
            run_stage(start_run(args.config, args.out, args.overrides, args.overwrite), "fit")
    else:
        run = RunDirectory(args.run_dir)
        run.load_config()
        run_stage(run, args.verb, redo=args.overwrite)


if __name__ == "__main__":
    sys.exit(main())
