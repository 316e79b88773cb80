"""Strict run configs: unknown or mistyped keys are refused before anything is built."""
import os

import pytest

from mindclip.config import ConfigError, load_config, parse_override
from mindclip.train.config import RunConfig, load_run_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = sorted(f for f in os.listdir(os.path.join(ROOT, "ascend_configs")) if f.endswith(".yaml"))


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_shipped_recipe_loads(recipe):
    cfg = load_run_config(os.path.join(ROOT, "ascend_configs", recipe))
    assert cfg.method in ("clip", "lightclip", "pyramidclip")


def test_values_and_overrides(tmp_path):
    path = write(tmp_path, "method: lightclip\noptim:\n  lr: 1e-3\ntrain:\n  epochs: 3\n")
    cfg = load_run_config(path, ["optim.lr=2e-4", "train.device_target=Ascend", "loss.local_loss=true"])
    assert cfg.optim.lr == pytest.approx(2e-4)
    assert cfg.train.epochs == 3 and cfg.train.device_target == "Ascend" and cfg.loss.local_loss is True
    assert cfg.optim.beta2 == pytest.approx(0.98)  # untouched defaults stay


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "optim:\n  learning_rate: 1e-3\n")
    with pytest.raises(ConfigError) as err:
        load_run_config(path)
    assert "optim.learning_rate" in str(err.value) and path in str(err.value)


def test_unknown_section(tmp_path):
    path = write(tmp_path, "optimiser:\n  lr: 1e-3\n")
    with pytest.raises(ConfigError, match="optimiser"):
        load_run_config(path)


def test_wrong_type_names_key(tmp_path):
    path = write(tmp_path, "train:\n  epochs: many\n")
    with pytest.raises(ConfigError, match="train.epochs"):
        load_run_config(path)
    path = write(tmp_path, "loss:\n  local_loss: 1\n", "b.yaml")
    with pytest.raises(ConfigError, match="loss.local_loss"):
        load_run_config(path)


def test_invalid_value_refused(tmp_path):
    path = write(tmp_path, "loss:\n  r1: 0.8\n  r2: 0.5\n")
    with pytest.raises(ConfigError, match="r1"):
        load_run_config(path)
    path = write(tmp_path, "method: simclr\n", "m.yaml")
    with pytest.raises(ConfigError, match="method"):
        load_run_config(path)


def test_mistyped_override_refused(tmp_path):
    path = write(tmp_path, "method: clip\n")
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_run_config(path, ["optim.lrr=1e-3"])
    with pytest.raises(ConfigError, match="key.subkey=value"):
        load_run_config(path, ["optim.lr"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_run_config(str(tmp_path / "nope.yaml"))
    path = write(tmp_path, "train: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_run_config(path)


def test_parse_override_types():
    assert parse_override("a.b=3") == ("a.b", 3)
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("a.b=true") == ("a.b", True)
    assert parse_override("a=x=y") == ("a", "x=y")


def test_scientific_notation_without_dot_is_a_float(tmp_path):
    # YAML 1.1 reads "5e-4" as a string; a learning rate written so must still work
    cfg = load_config(RunConfig, None, ["optim.lr=5e-4"], base={})
    assert cfg.optim.lr == pytest.approx(5e-4)


def test_overrides_are_validated_together(tmp_path):
    # r1 <= r2 holds only after both overrides: order must not matter
    path = write(tmp_path, "loss:\n  r1: 0.33\n  r2: 0.66\n")
    cfg = load_run_config(path, ["loss.r1=1.0", "loss.r2=1.0"])
    assert cfg.loss.r1 == cfg.loss.r2 == 1.0
    with pytest.raises(ConfigError, match="r1/r2"):
        load_run_config(path, ["loss.r1=0.9"])


def test_data_method_cannot_contradict_the_run_method(tmp_path):
    path = write(tmp_path, "method: lightclip\ndata:\n  method: pyramidclip\n")
    with pytest.raises(ConfigError, match="contradicts"):
        load_run_config(path)


@pytest.mark.parametrize("override, key, says", [
    ("data.batch_size=0", "data.batch_size", "must be at least 1, got 0"),
    ("data.augment=foo", "data.augment", "'foo' is not one of none, simclr"),
    ("data.mask_prob=2", "data.mask_prob", "must be in [0, 1], got 2.0"),
    ("data.text_buckets=[1]", "data.text_buckets", "1 is not a length >= 2"),
])
def test_train_tool_names_a_bad_data_override_in_one_line(tmp_path, capsys, override, key, says):
    """DataConfig's own checks (__post_init__) become ConfigErrors naming the key and the override."""
    from tool_loader import load_tool

    path = write(tmp_path, "method: clip\n")
    assert load_tool("train").main(["-c", path, "--set", override]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"override '{override}': {key}" in err and says in err, err


def test_a_bad_data_value_in_the_file_names_the_file(tmp_path):
    path = write(tmp_path, "method: clip\ndata:\n  augment: foo\n")
    with pytest.raises(ConfigError) as err:
        load_run_config(path)
    assert str(err.value) == f"{path}: data.augment: 'foo' is not one of none, simclr"
