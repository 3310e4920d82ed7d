"""The command line as a user meets it: help texts, and one clear line for every bad input."""

import subprocess
import sys

import pytest

from hybrid.cli import main

VERBS = ["run", "fit", "extract", "distill", "evidence", "export", "report", "audit", "predict",
         "explain", "concepts", "tcav"]


def _hybrid(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hybrid.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


@pytest.mark.parametrize("verb", [None, *VERBS])
def test_help_explains_with_an_example(verb, capsys):
    with pytest.raises(SystemExit) as info:
        main([verb, "--help"] if verb else ["--help"])
    assert info.value.code == 0
    assert "example" in capsys.readouterr().out


@pytest.mark.parametrize("text, expected", [
    ("data: {name: mnist}\n", "unknown data set 'mnist'; choose from: digits"),
    ("model: {backbone: {name: resnet}}\n", "unknown backbone 'resnet'; choose from: resnet18, small_cnn, timm, tiny_cnn, torchvision"),
    ("model: {backbone: {params: {width: 3}}}\n", "unknown key 'model.backbone.params.width'"),
    ("trainer: {max_epoch: 3}\n", "unknown key 'trainer.max_epoch' (did you mean 'max_epochs'?)"),
    ("trainer: {callbacks: []}\n", "'trainer.callbacks' is set by hybrid"),
    ("surrogates: {forest: {}}\n", "unknown surrogate 'forest'; choose from: rule_list, sparse_linear, tree"),
    ("surrogates: {tree: {params: {max_leaf_nodes: many}}}\n", "surrogates.tree.params.max_leaf_nodes"),
    ("export: {formats: [pdf]}\n", "unknown exporter 'pdf'; choose from: dot, json, markdown, python, sql, svg, text"),
    ("extract: {batch_size: -1}\n", "key 'extract.batch_size'"),
    ("data: {params: {val_fraction: 1.5}}\n", "key 'data.params.val_fraction': input should be less than 1"),
    ("model: {backbone: {params: {embedding_dim: 0}}}\n", "key 'model.backbone.params.embedding_dim'"),
    ("surrogates: {rule_list: {params: {max_rules: 0}}}\n", "'max_rules' parameter of RuleListSurrogate must be"),
    ("trainer: {precision: bogus}\n", "key 'trainer.precision': "),
    ("model: {scheduler: step}\n", "unknown scheduler 'step'; choose from: cosine, none"),
])
def test_bad_config_is_one_line_naming_file_and_key(tmp_path, capsys, text, expected):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    code = main(["run", str(config), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"hybrid: error: {config}: ") and expected in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists(), "nothing is written for a bad config"


def test_missing_config_and_missing_run(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "no such config file" in capsys.readouterr().err
    assert main(["distill", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_stage_before_its_input_says_what_to_run(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("")
    from hybrid.pipeline import start_run

    run = start_run(config, tmp_path / "run")
    assert main(["distill", str(run.root)]) == 2
    assert "run `hybrid extract" in capsys.readouterr().err


def test_usage_errors_exit_2_without_traceback(tmp_path):
    done = _hybrid("run")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    done = _hybrid("run", str(tmp_path / "x.yaml"), "--set", "novalue")
    assert done.returncode == 2 and "expected KEY=VALUE" in done.stderr
