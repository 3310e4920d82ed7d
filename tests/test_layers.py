"""The architecture holds: layers import downwards only, and the numpy side never needs torch."""

import ast
from pathlib import Path

import pytest

from .conftest import run_python

PACKAGE = Path(__file__).resolve().parents[1] / "hybrid"

# utilities -> IR and config -> (surrogates, exporters, fidelity | data, backbones, attribution)
#   -> (report, audit | classifier, extraction, faithfulness) -> (evidence, concepts)
#   -> pipeline -> bundle -> cli
LAYERS = {
    "errors": 0, "_io": 0,
    "registry": 1, "ir": 1, "config": 1, "images": 1,
    "jsonio": 2, "features": 2, "rundir": 2,
    "surrogates": 3, "exporters": 3, "fidelity": 3, "deferral": 3, "data": 3, "backbones": 3,
    "attribution": 3,
    "report": 4, "audit": 4, "concept_audit": 4, "classifier": 4, "extraction": 4,
    "faithfulness": 4, "bottleneck": 5,
    "evidence": 5, "concepts": 5,
    "pipeline": 6,
    "bundle": 7,
    "cli": 8,
}
TORCH_FREE = ["errors", "_io", "registry", "ir", "images", "jsonio", "config", "features", "rundir",
              "surrogates", "exporters", "fidelity", "deferral", "report", "audit",
              "concept_audit"]


def _top(module_path: Path) -> str:
    parts = module_path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _module_level(tree: ast.Module):
    """Nodes of ``tree`` outside function bodies: what importing the module runs."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _imports(path: Path, module_level: bool = False):
    """Top-level hybrid modules and third-party packages ``path`` imports (with
    ``module_level``, only those importing the module itself imports, not lazy ones)."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    for node in (_module_level(tree) if module_level else ast.walk(tree)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = [*base[1:], *(node.module.split(".") if node.module else [])]
                if target:
                    yield "hybrid", target[0]
                else:  # "from .. import x": x is the module
                    yield from (("hybrid", alias.name) for alias in node.names)
            else:
                yield "external", node.module.split(".")[0]
        elif isinstance(node, ast.Import):
            yield from (("external", alias.name.split(".")[0]) for alias in node.names)


FILES = sorted(p for p in PACKAGE.rglob("*.py") if _top(p) != "__init__")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers_import_downwards_only(path):
    own = LAYERS[_top(path)]
    for kind, name in _imports(path):
        if kind == "hybrid" and name in LAYERS and name != _top(path):
            assert LAYERS[name] < own, \
                f"{path.name} (layer {own}) imports {name} (layer {LAYERS[name]})"


@pytest.mark.parametrize("path", [p for p in FILES if _top(p) in TORCH_FREE],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_numpy_side_does_not_import_torch(path):
    """Solvers may import torch lazily, inside the function a user calls with a device."""
    externals = {name for kind, name in _imports(path, module_level=True) if kind == "external"}
    assert not externals & {"torch", "pytorch_lightning", "lightning"}


def test_numpy_side_stages_run_without_torch():
    run_python(
        "import sys\n"
        "import hybrid, hybrid.surrogates, hybrid.exporters, hybrid.report, hybrid.fidelity\n"
        "import hybrid.audit, hybrid.deferral\n"
        "import hybrid.pipeline.distill, hybrid.pipeline.export, hybrid.pipeline.report, hybrid.cli\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n")
