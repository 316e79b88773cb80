"""Resume config check (mindclip/train/resume_check.py): which keys may change, and the refusals."""
import dataclasses

import pytest
import yaml

from mindclip.config import dump_yaml
from mindclip.train.config import RunConfig, load_run_config
from mindclip.train.errors import RunError
from mindclip.train.resume_check import (MAY_CHANGE, MUST_MATCH, check_resume_config, classified, config_keys,
                                         differences, must_match, parse_allow)

SPOKEN_FOR = ("optim.accumulation", "train.recompute", "train.amp_dtype", "loss.mlm_attention")


def test_every_config_key_is_classified_and_none_twice():
    """A new config key fails here until someone decides whether it may change on resume."""
    keys = config_keys(RunConfig())
    unclassified = [k for k in keys if not classified(k)]
    assert unclassified == []
    assert not set(MAY_CHANGE) & {k for k in MUST_MATCH if not k.endswith(".")}


def test_keys_other_engineers_add_are_classified_even_before_they_exist():
    assert [must_match(k) for k in SPOKEN_FOR] == [True, False, True, True]
    assert all(classified(k) for k in SPOKEN_FOR)


def test_the_issues_keys_must_match_and_bookkeeping_may_change():
    for key in ("data.batch_size", "optim.lr", "train.epochs", "train.max_steps", "method", "model.overrides",
                "model.name", "loss.token_weight", "train.seed", "train.amp_level"):
        assert must_match(key), key
    for key in ("train.log_every", "train.save_every", "data.num_workers", "train.eval_every", "train.eval_data"):
        assert not must_match(key), key


@pytest.fixture
def saved(tmp_path):
    """A run's config.yaml, as the trainer writes it."""
    cfg = RunConfig()
    path = str(tmp_path / "config.yaml")
    dump_yaml(cfg, path)
    return cfg, path


def test_identical_config_passes_and_bookkeeping_changes_are_reported(saved):
    cfg, path = saved
    assert check_resume_config(cfg, path) == {}
    changed = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, log_every=7, save_every=3))
    assert check_resume_config(changed, path) == {"train.log_every": [1, 7], "train.save_every": [0, 3]}


def test_changed_keys_are_refused_and_listed_with_both_values(saved, tmp_path):
    _, path = saved
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("method: lightclip\ndata: {batch_size: 4}\noptim: {lr: 1.0e-3}\n"
                      "model: {overrides: {embed_dim: 32}}\n")
    changed = load_run_config(str(recipe))
    with pytest.raises(RunError) as info:
        check_resume_config(changed, path)
    message = str(info.value)
    assert "\n" not in message
    for text in ("method (saved 'clip', now 'lightclip')", "data.batch_size (saved 32, now 4)",
                 "optim.lr (saved 0.0005, now 0.001)", "model.overrides (saved {}, now {'embed_dim': 32})"):
        assert text in message, message
    suggested = message.split("--resume-allow ")[1].split(" ")[0].split(",")
    assert {"method", "model.overrides", "data.batch_size", "optim.lr"} <= set(suggested)
    assert suggested == [k for k, _, _ in differences(changed, path)]  # a method brings its loss defaults too
    accepted = check_resume_config(changed, path, allow=suggested)
    assert accepted["optim.lr"] == [0.0005, 0.001] and set(accepted) == set(suggested)


def test_a_key_missing_from_an_older_saved_config_counts_as_its_default(saved):
    cfg, path = saved
    with open(path, encoding="utf-8") as f:
        tree = yaml.safe_load(f)
    del tree["train"]["keep_checkpoints"], tree["optim"]["clip_grad_norm"]
    tree["train"]["a_key_since_removed"] = 1
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(tree, f)
    assert differences(cfg, path) == []
    clipped = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, clip_grad_norm=1.0))
    assert differences(clipped, path) == [("optim.clip_grad_norm", 0.0, 1.0)]


def test_resume_allow_names_known_keys_only():
    cfg = RunConfig()
    assert parse_allow("optim.lr, data.batch_size", cfg) == ["optim.lr", "data.batch_size"]
    assert parse_allow("", cfg) == []
    with pytest.raises(RunError, match="--resume-allow: unknown config key 'optim.learning_rate'"):
        parse_allow("optim.learning_rate", cfg)


def test_a_missing_key_takes_the_default_of_the_runs_method(tmp_path):
    cfg = RunConfig(method="lightclip")
    cfg.validate()  # fills LightCLIP's loss defaults, as loading a recipe does
    path = str(tmp_path / "config.yaml")
    dump_yaml(cfg, path)
    with open(path, encoding="utf-8") as f:
        tree = yaml.safe_load(f)
    del tree["loss"]["r1"]  # 0.33 for LightCLIP, 1.0 for CLIP
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(tree, f)
    assert differences(cfg, path) == []
