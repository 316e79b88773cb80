"""Run reliability through tools/train.py with real processes: a second run refused while the first
runs, a SIGKILL leaving a stale lock, real corrupt bytes in the newest checkpoint, changed configs
refused on resume, NaN weights refused, a run that keeps skipping steps stopped (issue 16, items 1-3, 8).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import mindspore as ms
import numpy as np
import pytest

from tool_loader import load_tool
from train_helpers import ROOT, corrupt_middle, run_tool, tool_env, write_recipe

from mindclip.train import checkpoint as ckpt
from mindclip.train.run_dir import LOCK_NAME


@pytest.fixture(autouse=True)
def _graph_mode_afterwards():
    """These runs use PyNative (no compile: what is tested is bookkeeping); in-process ones set the
    mode for the whole process, so put back the suite's graph mode."""
    yield
    ms.set_context(mode=ms.GRAPH_MODE)


def read_log(output_dir):
    """(step records, event records) of a run's train_log.jsonl."""
    with open(os.path.join(output_dir, "train_log.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    return [r for r in records if "loss" in r], [r for r in records if "event" in r]


def wait_for_checkpoints(proc, output_dir, count, timeout=600):
    deadline = time.time() + timeout
    while len(ckpt.list_checkpoints(output_dir)) < count:
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() < deadline, "no checkpoints appeared"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def interrupted(tiny_demo, tmp_path_factory):
    """Run A trains with a checkpoint every step; while it runs, B (same directory) is started; A is
    SIGKILLed; 4 KB of random bytes go into its newest checkpoint; C resumes with --resume auto,
    a changed lr allowed by --resume-allow, and --max-steps-this-run 1."""
    out = str(tmp_path_factory.mktemp("interrupted"))
    recipe = write_recipe(os.path.join(out, "run.yaml"), tiny_demo, out,
                          train={"max_steps": 1000, "save_every": 1, "keep_checkpoints": 3, "output_dir": out,
                                 "mode": "pynative"})
    first = subprocess.Popen([sys.executable, "tools/train.py", "-c", recipe], cwd=ROOT, env=tool_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_checkpoints(first, out, 2)
        second = run_tool(["tools/train.py", "-c", recipe])
        assert first.poll() is None, "the first run ended before the second one was checked"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    saved = ckpt.list_checkpoints(out)
    steps_logged = len(read_log(out)[0])
    corrupt_middle(saved[0])
    resumed = run_tool(["tools/train.py", "-c", recipe, "--resume", "auto", "--resume-allow", "optim.lr",
                        "--set", "optim.lr=2e-3", "--max-steps-this-run", "1"])
    return {"out": out, "recipe": recipe, "first_pid": first.pid, "second": second, "saved": saved,
            "steps_logged": steps_logged, "resumed": resumed}


def test_a_second_run_is_refused_while_the_first_runs_naming_its_pid(interrupted):
    second = interrupted["second"]
    err = second.stderr.strip()
    assert second.returncode == 2 and err.count("\n") == 0, err[-3000:]
    assert f"is in use by another run (pid {interrupted['first_pid']} on " in err


def test_the_stale_lock_of_the_killed_run_is_taken_over(interrupted):
    resumed = interrupted["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"taking over the stale lock of pid {interrupted['first_pid']}" in resumed.stdout
    assert not os.path.exists(os.path.join(interrupted["out"], LOCK_NAME))  # released at the end


def test_resume_auto_passes_over_the_corrupt_newest_and_says_so(interrupted):
    newest, previous = interrupted["saved"][:2]
    stdout = interrupted["resumed"].stdout
    assert f"--resume auto: passing over {newest}: checksum mismatch" in stdout
    assert f"resuming from {previous} (step {ckpt.checkpoint_step(previous)})" in stdout
    assert os.path.isfile(newest + ".rejected")  # kept for inspection, out of the checkpoint list


def test_the_log_holds_one_record_per_step_and_the_allowed_change(interrupted):
    previous = ckpt.checkpoint_step(interrupted["saved"][1])
    steps, events = read_log(interrupted["out"])
    assert interrupted["steps_logged"] > previous  # the killed run had logged past the resumed step
    assert [r["step"] for r in steps] == list(range(1, previous + 2))
    assert len(events) == 1 and events[0]["event"] == "resume" and events[0]["step"] == previous
    assert events[0]["config_changes"] == {"optim.lr": [0.001, 0.002]}
    assert events[0]["resume_allow"] == ["optim.lr"]
    assert events[0]["passed_over"][0]["path"] == interrupted["saved"][0]


def test_max_steps_this_run_saves_and_reports_its_checkpoint(interrupted):
    step = ckpt.checkpoint_step(interrupted["saved"][1]) + 1
    path = os.path.join(interrupted["out"], ckpt.CKPT_PATTERN.format(step))
    assert f"checkpoint {path}\n" in interrupted["resumed"].stdout
    state = ckpt.read_training_checkpoint(path)  # CRC, meta entries, finite values
    assert int(state["meta.step"].asnumpy()) == step
    assert not os.path.exists(os.path.join(interrupted["out"], "last.ckpt"))  # the run is not complete


@pytest.fixture(scope="module")
def train_tool():
    return load_tool("train")


def call(train_tool, capsys, argv):
    status = train_tool.main(argv)
    captured = capsys.readouterr()
    return status, captured.err.strip()


@pytest.mark.parametrize("change, key", [
    ("data.batch_size=4", "data.batch_size (saved 8, now 4)"),
    ("optim.lr=1e-3", "optim.lr (saved 0.002, now 0.001)"),
    ("model.overrides.embed_dim=32", "model.overrides (saved {}, now {'embed_dim': 32})"),
    ("method=lightclip", "method (saved 'clip', now 'lightclip')"),
    ("train.max_steps=500", "train.max_steps (saved 1000, now 500)"),
])
def test_a_changed_config_is_refused_on_resume_and_touches_nothing(interrupted, train_tool, capsys, change, key):
    out = interrupted["out"]
    before = sorted(os.listdir(out))
    status, err = call(train_tool, capsys, ["-c", os.path.join(out, "config.yaml"), "--resume", "auto",
                                            "--set", change])
    assert status == 2 and "\n" not in err, err
    assert key in err and "--resume-allow " + key.split(" ")[0] in err, err
    assert sorted(os.listdir(out)) == before


def test_a_fresh_run_in_a_directory_holding_a_run_is_refused(interrupted, train_tool, capsys):
    status, err = call(train_tool, capsys, ["-c", interrupted["recipe"]])
    assert status == 2 and f"train.output_dir {interrupted['out']} already holds a run" in err, err


def nan_copy(source, target, name):
    """`source` with entry `name` set to NaN, saved with a valid CRC (only the finite check can refuse it)."""
    entries = []
    for key, value in ms.load_checkpoint(source).items():
        array = value.asnumpy().copy()
        if key == name:
            array.flat[0] = np.nan
        entries.append({"name": key, "data": ms.Tensor(array)})
    ms.save_checkpoint(entries, target, crc_check=True)
    return target


def test_nan_weights_are_refused_by_resume_and_by_model_checkpoint(interrupted, train_tool, capsys, tmp_path):
    out = str(tmp_path / "copy")
    os.makedirs(out)
    source = interrupted["saved"][1]
    shutil.copy(os.path.join(interrupted["out"], "config.yaml"), out)
    bad = nan_copy(source, os.path.join(out, os.path.basename(source)), "visual.proj.weight")
    config = ["-c", os.path.join(out, "config.yaml"), "--set", f"train.output_dir={out}"]
    status, err = call(train_tool, capsys, config + ["--resume", bad])
    assert status == 2 and "non-finite values (NaN or Inf) in visual.proj.weight" in err, err
    status, err = call(train_tool, capsys, config + ["--set", f"model.checkpoint={bad}", "--overwrite"])
    assert status == 2 and f"checkpoint {bad}: non-finite values" in err, err
    assert os.path.isfile(bad)  # refused before --overwrite deleted anything


def test_a_run_that_keeps_skipping_steps_stops_with_exit_1(tiny_demo, tmp_path, train_tool, capsys):
    """A fixed loss scale of 1e39 (inf in float32) makes every gradient non-finite: every step skips."""
    out = str(tmp_path / "skipping")
    recipe = write_recipe(str(tmp_path / "run.yaml"), tiny_demo, out,
                          train={"max_steps": 6, "output_dir": out, "loss_scale": "1e39", "max_consecutive_skips": 2,
                                 "mode": "pynative"})
    status, err = call(train_tool, capsys, ["-c", recipe])
    assert status == 1 and "\n" not in err, err
    saved = os.path.join(out, ckpt.CKPT_PATTERN.format(2))
    assert ("2 consecutive optimizer steps skipped (steps 1..2: loss or gradients not finite), "
            f"train.max_consecutive_skips=2: stopping; saved {saved} (the initial weights") in err
    steps, _ = read_log(out)
    assert [(r["step"], r["finite"]) for r in steps] == [(1, False), (2, False)]
    assert not os.path.exists(os.path.join(out, "last.ckpt"))  # an incomplete run publishes nothing
    assert not os.path.exists(os.path.join(out, LOCK_NAME))
