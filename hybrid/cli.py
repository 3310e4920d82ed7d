"""The ``hybrid`` command: the whole pipeline (``run``) or one stage over a run directory.

User errors (config, files, names) print one line and exit with code 2; bugs keep their
traceback.
"""

import argparse
import json
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
    "evidence": ("show what makes each feature the rules use fire: prototypes, attributions",
                 "hybrid evidence runs/digits"),
    "export": ("write each surrogate as text, Markdown, JSON, DOT, SVG, Python and SQL",
               "hybrid export runs/digits"),
    "report": ("measure fidelity; write metrics.json, report.md and report.html",
               "hybrid report runs/digits"),
}
_AUDIT_EPILOG = (
    "examples:\n"
    "  hybrid audit runs/digits                                  # the run's test split\n"
    "  hybrid audit runs/digits --data configs/digits_shifted.yaml --min-fidelity 0.9\n"
    "  hybrid audit runs/digits --data my_images/ --json audit.json   # my_images/<class>/*.png\n"
    "exit codes: 0 passed (or no --min-fidelity), 1 a fidelity lower bound is under\n"
    "--min-fidelity, 2 usage error.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybrid",
        description="Train an image classifier, then distill it into models a person can read.",
        epilog="example:\n  hybrid run configs/digits.yaml            # all stages into runs/digits\n"
               "  hybrid run configs/digits.yaml --set trainer.max_epochs=5 --out runs/quick\n"
               "Each stage is also its own command over a run directory; see hybrid STAGE --help.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    run = _verb(verbs, "run", "run every stage: fit, extract, distill, evidence, export, report",
                "Run every stage for CONFIG. An interrupted run resumes where it stopped when "
                "started again with the same config.",
                "example:\n  hybrid run configs/digits.yaml --out runs/digits --set seed=1")
    _add_config_arguments(run)
    for stage, (summary, example) in _STAGE_HELP.items():
        sub = _verb(verbs, stage, summary, summary[0].upper() + summary[1:] + ".",
                    f"example:\n  {example}")
        if stage == "fit":
            _add_config_arguments(sub, accepts_run=True)
        else:
            sub.add_argument("run_dir", metavar="RUN", type=Path, help="a run directory")
            sub.add_argument("--overwrite", action="store_true", help="redo this stage if done")
        if stage == "export":
            _add_bundle_arguments(sub)
    _add_audit_parser(verbs)
    _add_predict_parser(verbs)
    _add_explain_parsers(verbs)
    _add_intervene_parser(verbs)
    return parser


def _add_intervene_parser(verbs) -> None:
    intervene = _verb(
        verbs, "intervene", "set concepts of a concept bottleneck run and see predictions change",
        "Replace predicted concepts with chosen values (or their true labels) before the label "
        "head, on a split of the run's data; report accuracy before and after and which "
        "predictions changed. Needs a run with model.bottleneck.",
        "examples:\n  hybrid intervene runs/shapes --concept color=red --value 1\n"
        "  hybrid intervene runs/shapes --concept shape=circle --value true "
        "--concept color=red --value true")
    intervene.add_argument("run_dir", metavar="RUN", type=Path, help="a run directory")
    intervene.add_argument("--concept", action="append", default=[], metavar="NAME",
                           help="a concept to set (repeatable, each with its --value)")
    intervene.add_argument("--value", action="append", default=[], metavar="V",
                           help="a number in [0, 1], or 'true' for the concept's true label")
    intervene.add_argument("--split", default="test", help="split of the data (default: test)")


def _verb(verbs, name: str, summary: str, description: str, epilog: str):
    """A sub-command whose help keeps the example's line breaks."""
    return verbs.add_parser(name, help=summary, description=description, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_bundle_arguments(parser) -> None:
    parser.add_argument("--bundle", type=Path, metavar="DIR",
                        help="instead, write a deployable bundle: the CNN (torch.export), the "
                             "surrogate JSON and a manifest; run it with `hybrid predict`")
    parser.add_argument("--surrogate", default="rule_list", help="surrogate of the bundle")
    parser.add_argument("--defer-below", type=float, metavar="F",
                        help="rules whose validation fidelity is under F defer to the CNN")
    parser.add_argument("--invert", action="store_true",
                        help="the images to predict are dark ink on light paper (the digits "
                             "data are light on dark)")
    parser.epilog += "\n  hybrid export runs/digits --bundle bundle/ --defer-below 0.9"


def _add_audit_parser(verbs) -> None:
    audit = _verb(verbs, "audit", "check the surrogates' fidelity to the CNN on new data (a CI gate)",
                  "Run the CNN and the surrogates on data and report fidelity overall, per class, "
                  "per rule, by CNN confidence, with intervals; the disagreements; the CNN's "
                  "calibration; the change since distillation.", _AUDIT_EPILOG)
    audit.add_argument("run_dir", metavar="RUN", type=Path, help="a run directory")
    audit.add_argument("--data", type=Path, metavar="CONFIG_OR_FOLDER",
                       help="a config whose data section to use, or a folder of images with one "
                            "sub-folder per class (default: the run's own data)")
    audit.add_argument("--split", default="test", help="split of the data (default: test)")
    audit.add_argument("--surrogate", action="append", metavar="NAME",
                       help="audit only this surrogate (repeatable; default: all)")
    audit.add_argument("--min-fidelity", type=float, metavar="F",
                       help="fail (exit 1) when a fidelity interval's lower bound is under F")
    audit.add_argument("--json", type=Path, metavar="OUT",
                       help="also write the full audit as JSON, and the CNN's reliability "
                            "diagram next to it (OUT_reliability.png)")


def _add_predict_parser(verbs) -> None:
    predict = _verb(verbs, "predict",
                    "classify images with a bundle: the class, the rule that fired, deferral",
                    "Classify every image under IMAGES with a bundle from "
                    "`hybrid export RUN --bundle DIR`.",
                    "example:\n  hybrid predict bundle/ images/ --json")
    predict.add_argument("bundle", metavar="DIR", type=Path, help="a bundle directory")
    predict.add_argument("images", metavar="IMAGES", type=Path, help="an image file or folder")
    predict.add_argument("--json", action="store_true", help="print JSON lines instead of a table")


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
        return _dispatch(args)
    except HybridError as exc:
        print(f"hybrid: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hybrid: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def _log_to_stderr() -> None:
    """Show hybrid's own progress lines; other libraries keep their logging as they set it."""
    log = logging.getLogger("hybrid")
    if _HANDLER not in log.handlers:
        _HANDLER.setFormatter(logging.Formatter("hybrid: %(message)s"))
        log.addHandler(_HANDLER)
    log.setLevel(logging.INFO)
    log.propagate = False


def _add_explain_parsers(verbs) -> None:
    explain = _verb(verbs, "explain", "heatmaps of what the CNN looks at (saliency, IG, Grad-CAM)",
                    "Attribution maps through Captum for images of a split or of a folder, "
                    "written as overlays with an index page and deletion/insertion scores.",
                    "examples:\n  hybrid explain runs/digits --method gradcam\n"
                    "  hybrid explain runs/digits --images my_digits/ --method integrated_gradients "
                    "--target 7")
    explain.add_argument("run_dir", metavar="RUN", type=Path, help="a run directory")
    source = explain.add_mutually_exclusive_group()
    source.add_argument("--images", type=Path, metavar="PATH", help="an image file or folder")
    source.add_argument("--split", default="test", help="a split of the run's data (default: test)")
    explain.add_argument("--method", default="gradcam",
                         help="saliency, integrated_gradients or gradcam (default: gradcam)")
    explain.add_argument("--target", default="predicted",
                         help="predicted (default), true, or a class name")
    explain.add_argument("--limit", type=int, default=64, help="images of the split (default: 64)")
    explain.add_argument("--out", type=Path, help="default: RUN/explanations/METHOD/")
    concepts = _verb(verbs, "concepts", "discover concepts in the CNN's activations (NMF)",
                     "Factorize the last convolution's activations into concepts (non-negative "
                     "matrix factorization) and write a prototype gallery with heatmaps.",
                     "example:\n  hybrid concepts runs/digits --n-concepts 10")
    concepts.add_argument("run_dir", metavar="RUN", type=Path, help="a run directory")
    concepts.add_argument("--n-concepts", type=int, default=10, help="default: 10")
    concepts.add_argument("--top-k", type=int, default=8, help="prototypes per concept (default: 8)")
    concepts.add_argument("--out", type=Path, help="default: RUN/concepts/")
    tcav = _verb(verbs, "tcav", "test the CNN's sensitivity to your concepts (CAVs, TCAV)",
                 "Fit a concept activation vector per concept folder against random images and "
                 "score each class's sensitivity to it (TCAV).",
                 "example:\n  hybrid tcav runs/digits --concepts my_concepts/  "
                 "# my_concepts/<concept>/*.png")
    tcav.add_argument("run_dir", metavar="RUN", type=Path, help="a run directory")
    tcav.add_argument("--concepts", type=Path, required=True, metavar="DIR",
                      help="one sub-folder of example images per concept")
    tcav.add_argument("--random", type=Path, metavar="DIR",
                      help="counter-examples (default: random training images)")
    tcav.add_argument("--layer", choices=["embedding", "cam"], default="embedding",
                      help="the layer whose activations the CAVs live in")
    tcav.add_argument("--out", type=Path, help="default: RUN/concepts/")


def _dispatch(args) -> int:
    """Run the verb; return the exit code."""
    from .pipeline import run_pipeline, run_stage, start_run
    from .rundir import RunDirectory

    if args.verb == "run":
        run = start_run(args.config, args.out, args.overrides, args.overwrite)
        if run_pipeline(run):  # False in the extra processes of a multi-device run
            print(f"hybrid: done: {run.root}/report.html")
    elif args.verb == "fit":
        if args.config.is_dir():
            run_stage(RunDirectory(args.config), "fit", redo=args.overwrite)
        else:
            run_stage(start_run(args.config, args.out, args.overrides, args.overwrite), "fit")
    elif args.verb == "audit":
        return _audit(args)
    elif args.verb == "predict":
        _predict(args)
    elif args.verb in ("explain", "concepts", "tcav"):
        _explain(args)
    elif args.verb == "intervene":
        from .pipeline.intervene import format_intervention, intervene_run

        print(format_intervention(intervene_run(RunDirectory(args.run_dir), args.concept,
                                                args.value, args.split)))
    elif args.verb == "export" and args.bundle is not None:
        from .bundle import write_bundle

        path = write_bundle(RunDirectory(args.run_dir), args.bundle, args.surrogate,
                            args.defer_below, overwrite=args.overwrite, invert=args.invert)
        print(f"hybrid: bundle written: {path}")
    else:
        run = RunDirectory(args.run_dir)
        run.load_config()
        run_stage(run, args.verb, redo=args.overwrite)
    return 0


def _audit(args) -> int:
    from .pipeline.audit import audit_run, format_audit, write_audit
    from .rundir import RunDirectory

    result = audit_run(RunDirectory(args.run_dir), args.data, args.split, args.surrogate,
                       args.min_fidelity)
    print(format_audit(result))
    if args.json is not None:
        print("written: " + ", ".join(map(str, write_audit(result, args.json))))
    return 1 if result["passed"] is False else 0


def _explain(args) -> None:
    from .rundir import RunDirectory

    run = RunDirectory(args.run_dir)
    run.require("fit")
    if args.verb == "explain":
        from .pipeline.explain import explain_run

        out = explain_run(run, method=args.method, target=args.target, images=args.images,
                          split=args.split, limit=args.limit, out=args.out)
        print(f"hybrid: explanations written: {out}/index.html")
    elif args.verb == "concepts":
        from .pipeline.concepts import discover

        out = discover(run, n_concepts=args.n_concepts, top_k=args.top_k, out=args.out)
        print(f"hybrid: concepts written: {out}")
    else:
        from .pipeline.concepts import format_tcav, tcav

        print(format_tcav(tcav(run, args.concepts, args.random, layer=args.layer, out=args.out)))


def _predict(args) -> None:
    from .bundle import format_predictions, load_bundle
    from .images import list_images

    paths = [args.images] if args.images.is_file() else list_images(args.images)
    rows = load_bundle(args.bundle).predict_images(paths)
    if args.json:
        print("\n".join(json.dumps(row, ensure_ascii=False) for row in rows))
    else:
        print(format_predictions(rows), end="")


if __name__ == "__main__":
    sys.exit(main())
