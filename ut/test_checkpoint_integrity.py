"""Checkpoint integrity: CRC32 on every file, corrupt bytes and NaN weights refused by every reader.

Readers: `mindclip.create_model(..., checkpoint=...)` (eval, export, train's model.checkpoint),
the resume path (`mindclip/train/checkpoint.py`), tools/eval.py and tools/export.py.
"""
import os

import mindspore as ms
import numpy as np
import pytest

from tool_loader import load_tool
from train_helpers import corrupt_middle

import mindclip
from mindclip.models.integrity import CheckpointError, nonfinite_names, verify_checksum
from mindclip.models.weights import read_checkpoint, save_weights
from mindclip.train import checkpoint as ckpt

MODEL = "tiny_mobilenetv2"


def training_checkpoint(path, step, weight=None, moment=None):
    """A small file with a training checkpoint's layout: weight, AdamW moment, every meta entry."""
    rng = np.random.default_rng(step)
    weight = rng.standard_normal((64, 64)).astype(np.float32) if weight is None else weight
    moment = np.zeros((64, 64), np.float32) if moment is None else moment
    entries = [{"name": "w", "data": ms.Tensor(weight)}, {"name": "optim.m.w", "data": ms.Tensor(moment)}]
    entries += [{"name": "meta." + key, "data": ms.Tensor(np.array(step if key == "step" else 0, np.int64))}
                for key in ckpt.META_KEYS]
    ms.save_checkpoint(entries, str(path), crc_check=True)
    return str(path)


def test_checksum_verified_absent_and_mismatched(tmp_path):
    path = training_checkpoint(tmp_path / "ckpt_step00000002.ckpt", 2)
    assert verify_checksum(path) is True
    bare = str(tmp_path / "bare.ckpt")
    ms.save_checkpoint([{"name": "w", "data": ms.Tensor(np.ones(3, np.float32))}], bare)
    assert verify_checksum(bare) is False  # no CRC (e.g. converted weights): unverified, not refused
    corrupt_middle(path)
    with pytest.raises(CheckpointError, match="checksum mismatch .*: the file is corrupt"):
        verify_checksum(path)
    with pytest.raises(FileNotFoundError):
        verify_checksum(str(tmp_path / "nothing.ckpt"))


def test_random_bytes_that_still_parse_are_caught_by_the_checksum(tmp_path):
    """The issue's case: MindSpore alone loads the damaged file (NaN or garbage weights)."""
    path = training_checkpoint(tmp_path / "ckpt_step00000002.ckpt", 2)
    corrupt_middle(path)
    ms.load_checkpoint(path)  # parses without complaint
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        ckpt.read_training_checkpoint(path)


def test_resume_auto_passes_over_a_corrupt_or_nan_newer_file_and_says_why(tmp_path):
    oldest = training_checkpoint(tmp_path / "ckpt_step00000002.ckpt", 2)
    nan = np.zeros((64, 64), np.float32)
    nan[3, 5] = np.nan
    with_nan = training_checkpoint(tmp_path / "ckpt_step00000004.ckpt", 4, moment=nan)
    corrupt = training_checkpoint(tmp_path / "ckpt_step00000006.ckpt", 6)
    corrupt_middle(corrupt)
    path, state, passed_over = ckpt.find_resume_checkpoint(str(tmp_path))
    assert path == oldest and int(state["meta.step"].asnumpy()) == 2
    assert [p for p, _ in passed_over] == [corrupt, with_nan]
    assert passed_over[0][1].startswith("checksum mismatch")
    assert passed_over[1][1] == "non-finite values (NaN or Inf) in optim.m.w: refusing these weights"


def test_nonfinite_names_lists_float_entries_only():
    state = {"a": np.array([1.0, np.inf]), "b": np.array([0.0]), "c": np.array([3], np.int64), "d": "text",
             "e": ms.Tensor(np.array([np.nan], np.float32))}
    assert nonfinite_names(state) == ["a", "e"]


@pytest.fixture(scope="module")
def model_checkpoints(tmp_path_factory):
    """A tiny model's checkpoint (with CRC), a copy with one NaN weight, and a corrupt copy."""
    folder = tmp_path_factory.mktemp("model_ckpts")
    model = mindclip.create_model(MODEL)
    good = str(folder / "good.ckpt")
    save_weights(model, good)
    state = read_checkpoint(good)
    state["text.ln_final.weight"] = state["text.ln_final.weight"].copy()
    state["text.ln_final.weight"][0] = np.nan
    nan = str(folder / "nan.ckpt")
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in state.items() if not isinstance(v, str)],
                       nan, crc_check=True)
    corrupt = str(folder / "corrupt.ckpt")
    with open(good, "rb") as src, open(corrupt, "wb") as dst:
        dst.write(src.read())
    corrupt_middle(corrupt)
    return {"good": good, "nan": nan, "corrupt": corrupt, "folder": str(folder)}


def test_create_model_refuses_nan_weights_and_corrupt_files(model_checkpoints):
    assert verify_checksum(model_checkpoints["good"]) is True  # save_weights writes the CRC
    mindclip.create_model(MODEL, checkpoint=model_checkpoints["good"])
    with pytest.raises(CheckpointError, match=r"nan.ckpt: non-finite values \(NaN or Inf\) in text.ln_final.weight"):
        mindclip.create_model(MODEL, checkpoint=model_checkpoints["nan"])
    with pytest.raises(CheckpointError, match="corrupt.ckpt: checksum mismatch"):
        mindclip.create_model(MODEL, checkpoint=model_checkpoints["corrupt"])


@pytest.mark.parametrize("which", ["nan", "corrupt"])
def test_eval_tool_refuses_a_bad_checkpoint_with_exit_2(model_checkpoints, tiny_demo, which, capsys):
    out = os.path.join(model_checkpoints["folder"], "results")
    status = load_tool("eval").main(["--model", MODEL, "--checkpoint", model_checkpoints[which], "--task",
                                     "zeroshot", "--dataset", "demo", "--root", tiny_demo, "--output-dir", out,
                                     "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.count("\n") == 0 and model_checkpoints[which] in err, err
    assert not os.path.exists(out)  # no numbers reported from those weights


def test_export_tool_refuses_nan_weights_with_exit_2(model_checkpoints, capsys):
    out = os.path.join(model_checkpoints["folder"], "export")
    status = load_tool("export").main(["--model", MODEL, "--checkpoint", model_checkpoints["nan"], "--out", out])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "non-finite values" in err and "text.ln_final.weight" in err, err
    assert not os.path.exists(out)
