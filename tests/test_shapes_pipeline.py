"""End to end: the shapes configs with a concept bottleneck, shrunk, through the command line."""

import json

import numpy as np
import pytest

from hybrid.cli import main
from hybrid.data.shapes import OBJECT_CONCEPTS
from hybrid.features import FeatureTable
from hybrid.jsonio import load_surrogate
from hybrid.rundir import RunDirectory

from .conftest import shrunk

pytestmark = pytest.mark.slow

SMALL = [arg for value in ("data.params.n_train=480", "data.params.n_val=120",
                           "data.params.n_test=120", "evidence.faithfulness_images=8")
         for arg in ("--set", value)]


def _run(config, out):
    assert main(["run", config, "--out", str(out), *shrunk(epochs=3, lr=0.03), *SMALL]) == 0
    return RunDirectory(out)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return _run("configs/shapes.yaml", tmp_path_factory.mktemp("shapes") / "run")


def test_surrogates_read_named_concepts_and_keep_the_true_ones(shapes):
    table = FeatureTable.load(shapes.features("test"))
    assert table.feature_names == OBJECT_CONCEPTS
    assert table.concept_names == OBJECT_CONCEPTS
    assert table.concepts.shape == (120, len(OBJECT_CONCEPTS))
    assert np.all((table.X >= 0) & (table.X <= 1))  # concept probabilities
    model = load_surrogate(shapes.surrogate("rule_list"))
    assert model.feature_names == OBJECT_CONCEPTS
    text = "".join((shapes.exports_dir / f"{name}.txt").read_text()
                   for name in ("rule_list", "tree", "sparse_linear"))
    assert any(concept in text for concept in OBJECT_CONCEPTS)
    assert "dim_" not in text


def test_report_scores_every_concept(shapes):
    metrics = json.loads(shapes.metrics_path.read_text())
    rows = metrics["concepts"]["per_concept"]
    assert [row["concept"] for row in rows] == list(OBJECT_CONCEPTS)
    assert all(0 <= row["accuracy"] <= 1 for row in rows)
    assert "Concepts" in shapes.report_html.read_text()


def test_intervene_sets_a_concept_and_reports_the_change(shapes, capsys):
    assert main(["intervene", str(shapes.root), "--concept", "color=blue", "--value", "1",
                 "--concept", "texture=striped", "--value", "0"]) == 0
    out = capsys.readouterr().out
    assert "accuracy:" in out and "predictions changed:" in out
    (written,) = (shapes.root / "interventions").glob("*.json")
    summary = json.loads(written.read_text())
    assert summary["interventions"] == {"color=blue": 1.0, "texture=striped": 0.0}
    assert summary["n"] == 120 and summary["split"] == "test"
    assert sum(change["n"] for change in summary["changes"]) == summary["changed"]
    # true values: the head then reads the true concepts
    assert main(["intervene", str(shapes.root), "--concept", "color=red",
                 "--value", "true"]) == 0


@pytest.mark.parametrize("args, message", [
    (["--concept", "colour=red", "--value", "1"], "not a concept of this run; valid: shape=circle"),
    (["--concept", "color=red", "--value", "2"], "expected a number in [0, 1] or 'true'"),
    (["--concept", "color=red"], "give one value per concept"),
])
def test_intervene_rejects_bad_input_with_one_line(shapes, capsys, args, message):
    assert main(["intervene", str(shapes.root), *args]) == 2
    assert message in capsys.readouterr().err


def test_spurious_run_lists_what_reads_the_mark(tmp_path):
    run = _run("configs/shapes_spurious.yaml", tmp_path / "spurious")
    metrics = json.loads(run.metrics_path.read_text())
    table = FeatureTable.load(run.features("test"))
    assert table.feature_names[-1] == "mark=corner"
    flagged = metrics["suspect_concepts"]
    assert set(flagged) == {"tree", "rule_list", "sparse_linear"}
    for found in flagged.values():
        for entry in found:
            assert entry["concept"] == "mark=corner"
            without = ~(table.concepts[:, -1] > 0.5)
            assert entry["test_n_without"] == int(without.sum())
            assert entry["accuracy_drop"] == pytest.approx(
                metrics["teacher"]["val_accuracy"] - entry["test_accuracy_without"])
