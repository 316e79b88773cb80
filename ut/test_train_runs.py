"""Whole training runs through tools/train.py: kill-and-resume, atomic checkpoints (msrun runs: test_train_distributed.py)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from train_helpers import ROOT, checkpoint_arrays, max_weight_difference, run_tool, tool_env, write_recipe

from mindclip.train import checkpoint as ckpt


def read_log(output_dir):
    with open(os.path.join(output_dir, "train_log.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def uninterrupted(tiny_demo, tmp_path_factory):
    """6 steps of CLIP training on the tiny demo, in one go."""
    out = str(tmp_path_factory.mktemp("straight"))
    recipe = write_recipe(os.path.join(out, "run.yaml"), tiny_demo, out,
                          train={"max_steps": 6, "save_every": 2, "output_dir": out})
    result = run_tool(["tools/train.py", "-c", recipe])
    assert result.returncode == 0, result.stderr[-3000:]
    return recipe, out


def test_log_records_every_step_with_every_field(uninterrupted):
    _, out = uninterrupted
    records = read_log(out)
    assert [r["step"] for r in records] == list(range(1, 7))
    for r in records:
        assert set(r) >= {"step", "epoch", "lr", "loss", "parts", "logit_scale", "step_time", "images_per_s",
                          "skipped_steps"}
        assert np.isfinite(r["loss"]) and r["parts"]["inst"] == pytest.approx(r["loss"])
    assert records[-1]["lr"] < max(r["lr"] for r in records)  # cosine decay after warm-up
    assert os.path.isfile(os.path.join(out, "config.yaml"))


def test_sigkill_then_resume_auto_equals_uninterrupted(uninterrupted, tiny_demo, tmp_path):
    recipe, straight = uninterrupted
    out = str(tmp_path / "killed")
    os.makedirs(out)
    killed_recipe = write_recipe(os.path.join(out, "run.yaml"), tiny_demo, out,
                                 train={"max_steps": 6, "save_every": 2, "output_dir": out})
    proc = subprocess.Popen([sys.executable, "tools/train.py", "-c", killed_recipe], cwd=ROOT, env=tool_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 600
    while not ckpt.list_checkpoints(out) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-training: after the first checkpoint, before the end
    proc.wait()
    saved = ckpt.list_checkpoints(out)
    assert saved, "no checkpoint appeared before the kill"
    assert max(r["step"] for r in read_log(out)) < 6, "the run finished before it was killed"
    with open(os.path.join(out, "ckpt_step00000099.partial.ckpt"), "wb") as f:
        f.write(b"half a checkpoint")  # an interrupted write must be ignored by --resume auto

    result = run_tool(["tools/train.py", "-c", killed_recipe, "--resume", "auto"])
    assert result.returncode == 0, result.stderr[-3000:]
    final = checkpoint_arrays(os.path.join(out, "ckpt_step00000006.ckpt"))
    reference = checkpoint_arrays(os.path.join(straight, "ckpt_step00000006.ckpt"))
    assert max_weight_difference(final, reference) <= 1e-5
    # the resumed run continued from the checkpoint's step: no step repeated after it, none skipped
    steps = [r["step"] for r in read_log(out)]
    resumed_from = int(os.path.basename(saved[0])[9:17])
    assert steps[-(6 - resumed_from):] == list(range(resumed_from + 1, 7))


def test_latest_good_checkpoint_skips_a_corrupt_newest(uninterrupted, tmp_path):
    _, straight = uninterrupted
    good = ckpt.list_checkpoints(straight)[0]
    corrupt = tmp_path / "ckpt_step00000010.ckpt"
    with open(good, "rb") as f:
        corrupt.write_bytes(f.read()[:2000])  # a truncated file
    import shutil

    shutil.copy(good, tmp_path / os.path.basename(good))
    assert ckpt.latest_good_checkpoint(str(tmp_path)) == str(tmp_path / os.path.basename(good))
