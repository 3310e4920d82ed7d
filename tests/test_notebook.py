"""The quickstart notebook runs top to bottom in a fresh kernel (one epoch of training)."""

import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
KERNEL = "python3"
# jupyter_client starts a spec whose command is a bare ``python`` with the running interpreter.
_BARE_PYTHONS = {"python", f"python{sys.version_info[0]}",
                 f"python{sys.version_info[0]}.{sys.version_info[1]}"}


def _kernel_runs_this_python() -> bool:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        command = KernelSpecManager().get_kernel_spec(KERNEL).argv[0]
    except NoSuchKernel:
        return False
    if command in _BARE_PYTHONS:
        return True
    return Path(shutil.which(command) or command).absolute() == Path(sys.executable).absolute()


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """The name of a kernel that runs this interpreter (the venv's), installed if need be."""
    if not _kernel_runs_this_python():
        from ipykernel.kernelspec import install

        install(kernel_name=KERNEL, prefix=str(tmp_path / "jupyter"))
        monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter" / "share" / "jupyter"))
        assert _kernel_runs_this_python()
    return KERNEL


def test_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.slow
def test_notebook_runs(kernel, monkeypatch):
    pytest.importorskip("hybrid.audit", reason="hybrid.audit (audit_features) is not written yet")
    from nbclient import NotebookClient

    monkeypatch.setenv("HYBRID_QUICKSTART_EPOCHS", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    before = sorted(os.listdir(NOTEBOOK.parent))
    NotebookClient(notebook, timeout=300, kernel_name=kernel,
                   resources={"metadata": {"path": str(ROOT)}}).execute()  # raises on an error
    audit = next(cell for cell in notebook.cells if "audit" in cell.metadata.get("tags", ()))
    printed = "".join(output.get("text", "") for output in audit.outputs)
    assert re.search(r"audit fidelity [01]\.\d{3} \[95% CI", printed), printed
    assert sorted(os.listdir(NOTEBOOK.parent)) == before  # the run went to a temporary folder
