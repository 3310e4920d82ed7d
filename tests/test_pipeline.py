"""End to end: the real configs/digits.yaml through the command line, into tmp_path."""

import json
import shutil

import numpy as np
import pytest

from hybrid.cli import main
from hybrid.features import FeatureTable
from hybrid.rundir import SPLITS, RunDirectory
from hybrid.surrogates import SURROGATES

from .conftest import run_python, shrunk

pytestmark = pytest.mark.slow

SHRUNK = shrunk(tiny=False)  # the real small_cnn backbone, one epoch


def _run(out, *extra):
    assert main(["run", "configs/digits.yaml", "--out", str(out), *SHRUNK, *extra]) == 0
    return RunDirectory(out)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("digits") / "run")


def test_run_directory_contract(run):
    for path in (run.config_path, run.checkpoints / "best.ckpt", run.metrics_path, run.report_md,
                 run.report_html, run.root / "logs" / "metrics.csv"):
        assert path.is_file(), path
    for split in SPLITS:
        files = {p.name for p in run.features(split).iterdir()}
        assert {"table.json", "X.npy", "teacher.npy", "proba.npy", "y.npy", "index.npy"} <= files
        n = len(np.load(run.features(split) / "y.npy"))
        assert np.load(run.features(split) / "X.npy", mmap_mode="r").shape[0] == n
        assert np.load(run.features(split) / "proba.npy").shape == (n, 10)
    exported = {p.name for p in run.exports_dir.iterdir()}
    suffixes = [".txt", ".md", ".json", ".dot", ".py", ".sql"] + ([".svg"] if shutil.which("dot") else [])
    for name in ("tree", "rule_list", "sparse_linear"):
        assert run.surrogate(name).is_file()
        assert {f"{name}{suffix}" for suffix in suffixes} <= exported


def test_metrics_contract(run):
    metrics = json.loads(run.metrics_path.read_text())
    assert 0 <= metrics["teacher"]["test_accuracy"] <= 1
    units = {"tree": "leaves", "rule_list": "rules", "sparse_linear": "nonzero_weights"}
    for name, unit in units.items():
        entry = metrics["surrogates"][name]
        low, high = entry["test_fidelity_ci"]
        assert low <= entry["test_fidelity"] <= high
        assert entry["complexity_unit"] == unit and entry["complexity"] >= 1
        assert 0 <= entry["test_accuracy"] <= 1
        assert len(metrics["sweep"][name]["points"]) >= 4
    html = run.report_html.read_text()
    assert f"{metrics['teacher']['test_accuracy']:.3f}" in html and "data:image/png;base64," in html


def test_surrogate_files_predict_exactly_like_the_fitted_surrogates_without_torch(run):
    train = FeatureTable.load(run.features("train"))
    test = FeatureTable.load(run.features("test"))
    config = run.load_config()
    script = ("import sys, json, numpy as np, hybrid\n"
              f"X = np.load({str(run.features('test') / 'X.npy')!r})\n"
              "out = {n: hybrid.load_surrogate(f'" + str(run.surrogates_dir) + "/{n}.json')"
              ".predict(X).tolist() for n in ('tree', 'rule_list', 'sparse_linear')}\n"
              "assert 'torch' not in sys.modules\n"
              "print(json.dumps(out))\n")
    loaded = json.loads(run_python(script))
    val = FeatureTable.load(run.features("val"))
    for name, surrogate in config.surrogates.items():
        fitted = SURROGATES.create(surrogate.name or name, **surrogate.params)
        fitted.fit(train.frame(), train.teacher, class_names=train.class_names,
                   eval_set=(val.frame(), val.teacher))
        np.testing.assert_array_equal(loaded[name], fitted.predict(test.frame()))


def test_same_config_and_seed_give_byte_identical_surrogates(run, tmp_path):
    again = _run(tmp_path / "again")
    files = sorted(p.relative_to(run.surrogates_dir) for p in run.surrogates_dir.rglob("*.json")
                   if p.name != "distill.json")
    assert len(files) >= 3 + 4 * 3
    for relative in files:
        assert (again.surrogates_dir / relative).read_bytes() == (run.surrogates_dir / relative).read_bytes()


def test_running_again_resumes_and_redoes_only_what_is_missing(run, capsys):
    fit_marker = run.marker("fit").read_bytes()
    run.marker("distill").unlink()  # as if killed while distilling
    capsys.readouterr()
    _run(run.root)
    err = capsys.readouterr().err
    assert "fit: done already" in err and "extract: done already" in err
    assert "distill: rule_list" in err and run.is_done("report")
    assert run.marker("fit").read_bytes() == fit_marker


def test_training_resumes_from_the_last_checkpoint(run, capsys):
    run.marker("fit").unlink()  # as if killed after an epoch: last.ckpt is there, fit.json not
    assert main(["fit", str(run.root)]) == 0
    assert "resuming from" in capsys.readouterr().err and run.is_done("fit")
    assert not run.is_done("extract"), "a refit makes the features stale"
    _run(run.root)
    assert run.is_done("report")


def test_other_config_needs_overwrite(run, capsys):
    code = main(["run", "configs/digits.yaml", "--out", str(run.root), *SHRUNK, "--set", "seed=3"])
    assert code == 2 and "different config (seed: 0 -> 3)" in capsys.readouterr().err


def test_stage_verbs_redo_one_stage(run):
    before = run.marker("report").stat().st_mtime_ns
    assert main(["export", str(run.root), "--overwrite"]) == 0
    assert run.is_done("export") and not run.is_done("report"), "later stages become stale"
    assert main(["report", str(run.root)]) == 0
    assert run.marker("report").stat().st_mtime_ns != before


def test_full_default_config_meets_the_accuracy_and_fidelity_goals(tmp_path):
    """The unshrunk configs/digits.yaml: the numbers the README promises."""
    out = tmp_path / "full"
    assert main(["run", "configs/digits.yaml", "--out", str(out),
                 "--set", "trainer.enable_progress_bar=false"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teacher"]["test_accuracy"] >= 0.97
    surrogates = metrics["surrogates"]
    assert surrogates["tree"]["complexity"] <= 32 and surrogates["tree"]["test_fidelity"] >= 0.90
    assert surrogates["rule_list"]["complexity"] <= 32 and surrogates["rule_list"]["test_fidelity"] >= 0.90
    assert surrogates["sparse_linear"]["test_fidelity"] >= 0.95
    linear = json.loads((out / "surrogates" / "sparse_linear.json").read_text())
    assert max(sum(w != 0 for w in row) for row in linear["model"]["coef"]) <= 10


def test_audit_gates_on_the_run_split(run, tmp_path, capsys):
    metrics = json.loads(run.metrics_path.read_text())
    out = tmp_path / "audit.json"
    assert main(["audit", str(run.root), "--min-fidelity", "0.05", "--json", str(out)]) == 0
    assert "PASSED" in capsys.readouterr().out
    result = json.loads(out.read_text())
    for name, audit in result["surrogates"].items():
        assert audit["fidelity"] == pytest.approx(metrics["surrogates"][name]["test_fidelity"])
        assert audit["change"] == pytest.approx(0.0) and audit["passed"] is True
        assert sum(row["n"] for row in audit["per_class"]) == audit["n"]
    assert main(["audit", str(run.root), "--min-fidelity", "0.9999"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_audit_runs_the_cnn_on_a_shifted_data_set(run, tmp_path, capsys):
    out = tmp_path / "shifted.json"
    assert main(["audit", str(run.root), "--data", "configs/digits_shifted.yaml",
                 "--surrogate", "tree", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    audit = result["surrogates"]["tree"]
    assert result["data"]["kind"] == "config" and list(result["surrogates"]) == ["tree"]
    assert audit["n"] == 360 and audit["change"] is not None
    assert audit["calibration"]["ece"] is not None


def test_audit_on_a_folder_of_images(run, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    test = FeatureTable.load(run.features("test"))
    for i in test.index[:20]:
        folder = tmp_path / "images" / str(digits.target[i])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((digits.images[i] * 255 / 16).round().astype("uint8")).save(folder / f"{i}.png")
    out = tmp_path / "folder.json"
    assert main(["audit", str(run.root), "--data", str(tmp_path / "images"), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["data"]["kind"] == "folder" and len(result["data"]["files"]) == 20
    assert result["surrogates"]["rule_list"]["n"] == 20
    for row in result["surrogates"]["rule_list"]["disagreements"]:
        assert row["file"].endswith(".png")
    assert (tmp_path / "folder_reliability.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["--data", "nowhere/"], "no such config file or image folder"),
    (["--surrogate", "forest"], "unknown surrogate 'forest'"),
    (["--split", "holdout"], "unknown split 'holdout'"),
])
def test_audit_usage_errors_exit_2(run, capsys, args, message):
    assert main(["audit", str(run.root), *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.requires_browser
def test_real_report_opens_cleanly_in_chromium(run):
    from .browser import open_page

    metrics = json.loads(run.metrics_path.read_text())
    page = open_page(run.report_html, run.root / "report.png")
    assert page.console_errors == [] and page.network_requests == []
    assert page.images_loaded and page.broken_images == []
    for section in ("summary", "fidelity-vs-complexity", "per-class", "rules", "deferral",
                    "calibration"):
        assert section in page.sections, section
    assert f"{metrics['teacher']['test_accuracy']:.3f}" in page.sections["summary"]
    for entry in metrics["surrogates"].values():
        assert f"{entry['test_fidelity']:.3f}" in page.sections["summary"]
    assert (run.root / "report.png").stat().st_size > 10_000


def test_code_exports_of_the_run_predict_like_the_surrogates(run):
    import importlib.util
    import sqlite3

    from hybrid import load_surrogate

    test = FeatureTable.load(run.features("test"))
    rows = test.X.astype(float).tolist()
    connection = sqlite3.connect(":memory:")
    columns = ", ".join(f'"{name}" DOUBLE' for name in test.feature_names)
    connection.execute(f"CREATE TABLE features (row_id INTEGER, {columns})")
    connection.executemany(f"INSERT INTO features VALUES ({', '.join('?' * (len(rows[0]) + 1))})",
                           [(i, *row) for i, row in enumerate(rows)])
    for name in ("tree", "rule_list", "sparse_linear"):
        expected = load_surrogate(run.surrogate(name)).predict(test.X).tolist()
        spec = importlib.util.spec_from_file_location(f"export_{name}", run.exports_dir / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.predict(rows) == expected
        select = (run.exports_dir / f"{name}.sql").read_text()
        got = [row[-1] for row in sorted(connection.execute(select.rstrip().rstrip(";")))]
        assert got == expected


def test_surrogates_can_read_discovered_concepts(tmp_path):
    """extract.features: discovered_concepts -> rules over concept_XX columns, end to end."""
    out = tmp_path / "concepts"
    assert main(["run", "configs/digits.yaml", "--out", str(out), *SHRUNK,
                 "--set", "extract.features=discovered_concepts", "--set", "extract.n_concepts=6",
                 "--set", "evidence.faithfulness_images=0"]) == 0
    run = RunDirectory(out)
    train = FeatureTable.load(run.features("train"))
    assert train.feature_names == tuple(f"concept_{i:02d}" for i in range(6))
    assert train.X.min() >= 0
    rules = (run.exports_dir / "rule_list.txt").read_text()
    assert "concept_" in rules and "dim_" not in rules
    metrics = json.loads(run.metrics_path.read_text())
    assert metrics["data"]["feature_kind"] == "discovered_concepts"
    assert metrics["surrogates"]["rule_list"]["test_fidelity"] > 0.3


def test_explain_concepts_and_tcav_from_the_command_line(run, tmp_path, capsys):
    assert main(["explain", str(run.root), "--limit", "4", "--method", "saliency",
                 "--out", str(tmp_path / "saliency")]) == 0
    assert len(list((tmp_path / "saliency").glob("*.png"))) == 4
    assert (tmp_path / "saliency" / "index.html").is_file()
    assert main(["concepts", str(run.root), "--n-concepts", "4", "--out", str(tmp_path / "c")]) == 0
    assert sorted(p.name for p in (tmp_path / "c").glob("concept_*.png")) == \
        [f"concept_{i:02d}.png" for i in range(4)]
    capsys.readouterr()
    assert main(["tcav", str(run.root), "--concepts", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["explain", str(run.root), "--target", "eleven", "--limit", "2"]) == 2
    assert "eleven" in capsys.readouterr().err


def test_intervene_needs_a_concept_bottleneck(run, capsys):
    assert main(["intervene", str(run.root), "--concept", "x", "--value", "1"]) == 2
    assert "has no concept bottleneck" in capsys.readouterr().err
