"""The run config: what a method implies, the step settings (accumulation, recompute, precision), and
their refusal before anything is built."""
import os

import pytest
import yaml

from train_helpers import run_tool, write_recipe

from mindclip.config import ConfigError, load_config
from mindclip.train.config import METHOD_LOSS_DEFAULTS, RunConfig


def resolved(overrides):
    return load_config(RunConfig, None, overrides, base={})


@pytest.mark.parametrize("method", sorted(METHOD_LOSS_DEFAULTS))
def test_a_method_implies_its_paper_loss_defaults(method):
    loss = resolved([f"method={method}"]).loss
    for key, value in METHOD_LOSS_DEFAULTS[method].items():
        assert getattr(loss, key) == value, key


def test_lightclip_alone_trains_the_full_objective_and_explicit_keys_win():
    loss = resolved(["method=lightclip"]).loss
    assert (loss.inst_weight, loss.token_weight, loss.mlm_weight, loss.r1, loss.r2) == (0.8, 0.1, 0.1, 0.33, 0.66)
    loss = resolved(["method=lightclip", "loss.mlm_weight=0", "loss.r1=1", "loss.r2=1"]).loss
    assert (loss.token_weight, loss.mlm_weight, loss.r1, loss.r2) == (0.1, 0.0, 1.0, 1.0)


def test_data_method_follows_the_run_method():
    assert resolved(["method=pyramidclip"]).data.method == "pyramidclip"


@pytest.mark.parametrize("override, key", [
    ("optim.accumulation=sum", "accumulation"),
    ("train.recompute=everything", "recompute"),
    ("train.amp_dtype=float8", "amp_dtype"),
    ("loss.r1=1.5", "r1"),
])
def test_bad_step_settings_are_refused_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        resolved([override])


def test_bfloat16_on_cpu_is_refused_by_the_config():
    with pytest.raises(ConfigError, match="amp_dtype=bfloat16 cannot run on device_target=CPU"):
        resolved(["train.amp_level=O2", "train.amp_dtype=bfloat16"])
    # on a device that has the kernels the same settings are accepted (nothing is built here)
    cfg = resolved(["train.amp_level=O2", "train.amp_dtype=bfloat16", "train.device_target=Ascend"])
    assert cfg.train.amp_dtype == "bfloat16"


def test_bfloat16_on_cpu_is_refused_at_start_in_one_line(tiny_demo, tmp_path):
    path = write_recipe(str(tmp_path / "run.yaml"), tiny_demo, str(tmp_path / "out"))
    result = run_tool(["tools/train.py", "-c", path, "--set", "train.amp_level=O2",
                       "--set", "train.amp_dtype=bfloat16"], timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "amp_dtype=bfloat16 cannot run on device_target=CPU" in lines[0], lines
    assert not os.path.exists(tmp_path / "out" / "train_log.jsonl")  # refused before training


def test_amp_dtype_reaches_the_saved_config_and_the_log(tiny_demo, tmp_path):
    out = str(tmp_path / "out")
    path = write_recipe(str(tmp_path / "run.yaml"), tiny_demo, out, train={"max_steps": 1, "output_dir": out})
    result = run_tool(["tools/train.py", "-c", path, "--set", "train.amp_level=O2",
                       "--set", "train.amp_dtype=float16"])
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(out, "config.yaml"), encoding="utf-8") as f:
        saved = yaml.safe_load(f)
    assert saved["train"]["amp_dtype"] == "float16" and saved["train"]["loss_scale"] == "auto"
    assert "precision O2 float16, loss_scale=dynamic" in result.stdout
