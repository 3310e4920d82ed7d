import pytest

from hybrid.config import Config, check_params, config_to_yaml, load_config, parse_overrides
from hybrid.errors import ConfigError
from hybrid.surrogates import TreeSurrogate


def _write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_the_shipped_config_loads_and_round_trips(tmp_path):
    config = load_config("configs/digits.yaml")
    assert config.data.name == "digits" and config.surrogates["tree"].params == {"max_leaf_nodes": 32}
    again = load_config(_write(tmp_path, config_to_yaml(config)))
    assert again == config


def test_empty_file_gives_the_defaults(tmp_path):
    assert load_config(_write(tmp_path, "")) == Config()


def test_unknown_key_names_file_key_and_valid_keys(tmp_path):
    path = _write(tmp_path, "data:\n  nmae: digits\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and "'data.nmae'" in message and "did you mean 'name'" in message
    assert "valid keys: name, params" in message and "\n" not in message


def test_unknown_top_level_section(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'trainr'.*did you mean 'trainer'"):
        load_config(_write(tmp_path, "trainr: {}\n"))


def test_wrong_type_names_key_and_value(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'extract.batch_size': .*integer.*'many'"):
        load_config(_write(tmp_path, "extract: {batch_size: many}\n"))


def test_overrides_are_typed_and_applied(tmp_path):
    config = load_config(_write(tmp_path, ""), ["trainer.max_epochs=2", "seed=7",
                                                "surrogates.tree.params.max_leaf_nodes=8"])
    assert config.trainer["max_epochs"] == 2 and config.seed == 7
    assert config.surrogates["tree"].params == {"max_leaf_nodes": 8}


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_overrides(["trainer.max_epochs"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "data: [unclosed\n"))


def test_check_params_rejects_unknown_names_and_wrong_types():
    check_params(TreeSurrogate, {"max_leaf_nodes": 8}, "surrogates.tree.params")
    with pytest.raises(ConfigError, match=r"unknown key 'surrogates.tree.params.max_leaves'.*max_leaf_nodes"):
        check_params(TreeSurrogate, {"max_leaves": 8}, "surrogates.tree.params")
    with pytest.raises(ConfigError, match=r"key 'surrogates.tree.params.max_leaf_nodes'.*'lots'"):
        check_params(TreeSurrogate, {"max_leaf_nodes": "lots"}, "surrogates.tree.params")
