"""Strict run configs: unknown or mistyped keys are refused before anything is built."""
import json
import os

import pytest

from mindclip.config import ConfigError, load_config, parse_override, read_yaml, read_yaml_layers, to_dict
from mindclip.train.config import RunConfig, load_run_config
from tool_loader import load_tool

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


# ------------------------------------------------------------------ recipes sharing a base (`_base_`)
def test_recipes_resolve_as_they_did_before_they_shared_a_base():
    """ut/data/recipes_flat.json holds each recipe's flat file from before the bases (README.md there);
    today's recipe and that mapping must give the same RunConfig."""
    with open(os.path.join(ROOT, "ut", "data", "recipes_flat.json"), encoding="utf-8") as f:
        flat = json.load(f)
    assert set(flat) <= set(RECIPES) and len(flat) == 7
    for recipe, mapping in flat.items():
        before = to_dict(load_config(RunConfig, None, base=mapping))
        after = to_dict(load_run_config(os.path.join(ROOT, "ascend_configs", recipe)))
        assert after == before, (recipe, {k: (after[k], before[k]) for k in after if after[k] != before[k]})


def test_the_paper_recipes_hold_only_what_differs_from_their_base():
    for recipe in RECIPES:
        layers = read_yaml_layers(os.path.join(ROOT, "ascend_configs", recipe))
        if recipe.startswith(("lightclip_", "pyramidclip_")):
            assert len(layers) == 2 and os.path.basename(os.path.dirname(layers[0][0])) == "base"
            assert layers[1][1] == {"model": {"name": recipe[:-5]}, "train": {"output_dir": f"runs/{recipe[:-5]}"}}


def test_base_chain_merges_depth_first_and_the_recipe_wins(tmp_path):
    (tmp_path / "common").mkdir()
    write(tmp_path / "common", "method: lightclip\noptim:\n  lr: 1.0e-3\n  beta2: 0.95\n"
          "data:\n  crop_scale: [0.5, 1.0]\n  batch_size: 64\n", "root.yaml")
    write(tmp_path / "common", "_base_: root.yaml\noptim:\n  lr: 2.0e-3\ntrain:\n  epochs: 7\n", "family.yaml")
    path = write(tmp_path, "_base_: common/family.yaml\noptim:\n  weight_decay: 0.3\n"
                 "data:\n  crop_scale: [0.8, 1.0]\n", "run.yaml")
    cfg = load_run_config(path, ["train.epochs=9"])
    assert cfg.method == "lightclip" and cfg.train.epochs == 9  # from the root; the override wins
    assert (cfg.optim.lr, cfg.optim.beta2, cfg.optim.weight_decay) == (2e-3, 0.95, 0.3)  # section merged key by key
    assert cfg.data.crop_scale == (0.8, 1.0) and cfg.data.batch_size == 64  # a list replaces, never concatenates
    assert read_yaml(path)["optim"] == {"lr": 2e-3, "beta2": 0.95, "weight_decay": 0.3}
    assert "_base_" not in read_yaml(path)


def test_base_cycles_and_missing_bases_are_refused_naming_the_files(tmp_path):
    a = write(tmp_path, "_base_: b.yaml\n", "a.yaml")
    write(tmp_path, "_base_: ./a.yaml\n", "b.yaml")
    with pytest.raises(ConfigError, match=r"b\.yaml: _base_ cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        load_run_config(a)
    itself = write(tmp_path, "_base_: self.yaml\n", "self.yaml")
    with pytest.raises(ConfigError, match="cycle"):
        load_run_config(itself)
    lost = write(tmp_path, "_base_: base/nope.yaml\n", "lost.yaml")
    with pytest.raises(ConfigError, match=r"lost\.yaml: _base_ file not found: .*base/nope\.yaml"):
        load_run_config(lost)
    listed = write(tmp_path, "_base_: [a.yaml]\n", "listed.yaml")
    with pytest.raises(ConfigError, match=r"listed\.yaml: '_base_' must be the path of a YAML file"):
        load_run_config(listed)


def test_errors_name_the_file_of_the_chain_that_holds_the_key(tmp_path):
    base = write(tmp_path, "optim:\n  learning_rate: 1.0e-3\n", "base.yaml")
    path = write(tmp_path, "_base_: base.yaml\ntrain:\n  epochs: 2\n", "run.yaml")
    with pytest.raises(ConfigError) as err:
        load_run_config(path)
    assert str(err.value).startswith(f"{base}: unknown key 'optim.learning_rate'")
    write(tmp_path, "loss:\n  r1: 0.8\n", "base.yaml")
    write(tmp_path, "_base_: base.yaml\nloss:\n  r2: 0.5\n", "run.yaml")
    with pytest.raises(ConfigError, match=r"run\.yaml \(over .*base\.yaml\): loss\.r1/r2"):
        load_run_config(path)  # a constraint between files names the recipe and its base
    write(tmp_path, "_base_: base.yaml\noptim:\n  _base_: other.yaml\n", "run.yaml")
    with pytest.raises(ConfigError, match="unknown key 'optim._base_'"):
        load_run_config(path)  # only the top level names a base


# ------------------------------------------------------------------ a key written twice is refused
def test_duplicate_keys_are_refused_with_file_and_lines(tmp_path):
    path = write(tmp_path, "method: clip\noptim:\n  lr: 1.0e-3\n  beta1: 0.9\n  lr: 5.0e-4\n")
    with pytest.raises(ConfigError) as err:
        load_run_config(path)
    assert str(err.value) == f"{path}:5: key 'lr' is written twice in one section (first on line 3); keep one"
    top = write(tmp_path, "train:\n  epochs: 1\nmethod: clip\ntrain:\n  epochs: 2\n", "top.yaml")
    with pytest.raises(ConfigError, match=r"top\.yaml:4: key 'train' is written twice .*first on line 1"):
        load_run_config(top)
    assert read_yaml(write(tmp_path, "a:\n  x: 1\nb:\n  x: 1\n", "same.yaml")) == {"a": {"x": 1}, "b": {"x": 1}}


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    path = write(tmp_path, "shared: &s {lr: 1.0e-3, beta2: 0.95}\nother:\n  <<: *s\n  lr: 2.0e-3\n", "anchors.yaml")
    assert read_yaml(path)["other"] == {"lr": 2e-3, "beta2": 0.95}


def test_duplicate_key_in_a_recipe_stops_train_with_exit_2(tmp_path, capsys):
    path = write(tmp_path, "method: clip\nmethod: lightclip\n")
    assert load_tool("train").main(["-c", path]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"config error: {path}:2: key 'method' is written twice in one section (first on line 1); keep one"


def test_invalid_yaml_is_one_line_with_the_line_number(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 1\n  bad: [1, 2\n")
    with pytest.raises(ConfigError) as err:
        load_run_config(path)
    assert str(err.value).startswith(f"{path}:") and "invalid YAML" in str(err.value) and "\n" not in str(err.value)
