"""tools/train.py refuses bad input with one line naming the key, file or flag, exit status 2, before
anything is built (no output directory appears)."""
import os

import pytest

from tool_loader import load_tool
from train_helpers import write_recipe


@pytest.fixture(scope="module")
def train_tool():
    return load_tool("train")


@pytest.fixture
def recipe(tiny_demo, tmp_path):
    out = str(tmp_path / "run")
    return write_recipe(str(tmp_path / "run.yaml"), tiny_demo, out, train={"max_steps": 2, "output_dir": out}), out


def refused(train_tool, capsys, argv):
    """Run tools/train.py's main; return its one-line error (asserting status 2 and a single line)."""
    status = train_tool.main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert status == 2, captured.out[-2000:] + err[-2000:]
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


CASES = {
    "missing data": (["--set", "data.train_shards={tmp}/nowhere/train-*.mindrecord"],
                     "data.train_shards: no MindRecord shard matches"),
    "unknown model": (["--set", "model.name=tiny_convnext"], "model.name: unknown model 'tiny_convnext'"),
    "bad preset override": (["--set", "model.overrides.text.layerz=4"], "model.overrides: "),
    "method/preset mismatch": (["--set", "method=pyramidclip"],
                               "method=pyramidclip needs a CLIP image tower (image.backbone modified_resnet or "
                               "vit), but model.name=tiny_mobilenetv2 has mobilenet_v2; presets that fit: "),
    "lightclip on a CLIP tower": (["--set", "method=lightclip", "--set", "model.name=tiny_vit"],
                                  "method=lightclip needs a mindcv image tower with four stage maps (ResNet-18, "
                                  "MobileNet-V2, Swin), but model.name=tiny_vit has vit; presets that fit: "),
    "missing model checkpoint": (["--set", "model.checkpoint={tmp}/missing.ckpt"],
                                 "model.checkpoint: file not found: {tmp}/missing.ckpt"),
    "output_dir is a file": (["--set", "train.output_dir={tmp}/run.yaml"],
                             "train.output_dir {tmp}/run.yaml is a file, not a directory"),
    "output_dir under a file": (["--set", "train.output_dir={tmp}/run.yaml/sub"],
                                "train.output_dir {tmp}/run.yaml/sub lies under a file"),
    "missing resume file": (["--resume", "{tmp}/gone/ckpt_step00000004.ckpt"],
                            "--resume: checkpoint not found: {tmp}/gone/ckpt_step00000004.ckpt"),
    "resume a directory": (["--resume", "{tmp}"], "--resume {tmp} is a directory"),
    "eval without data": (["--set", "train.eval_every=2"], "train.eval_every=2 needs train.eval_data"),
    "missing eval data": (["--set", "train.eval_every=2", "--set", "train.eval_data={tmp}/val.csv"],
                          "train.eval_data: not found: {tmp}/val.csv"),
    "zero steps this run": (["--max-steps-this-run", "0"], "--max-steps-this-run must be >= 1"),
    "resume-allow alone": (["--resume-allow", "optim.lr"], "--resume-allow applies only with --resume"),
    "unknown resume-allow key": (["--resume", "auto", "--resume-allow", "optim.learning_rate"],
                                 "--resume-allow: unknown config key 'optim.learning_rate'"),
    "overwrite with resume auto": (["--resume", "auto", "--overwrite"],
                                   "--overwrite would delete the run that --resume auto continues"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_with_exit_2_and_nothing_created(train_tool, recipe, tmp_path, capsys, case):
    path, out = recipe
    extra, expected = CASES[case]
    tmp = str(tmp_path)
    err = refused(train_tool, capsys, ["-c", path] + [a.format(tmp=tmp) for a in extra])
    assert expected.format(tmp=tmp) in err, err
    assert not os.path.exists(out)


def test_device_without_support_is_refused(train_tool, recipe, capsys):
    from mindspore import hal

    if hal.is_available("GPU"):
        pytest.skip("this MindSpore build runs on GPU")
    path, out = recipe
    err = refused(train_tool, capsys, ["-c", path, "--set", "train.device_target=GPU"])
    assert "train.device_target=GPU: MindSpore cannot use GPU here" in err
    assert not os.path.exists(out)
