"""The run directory's lock and refusals (mindclip/train/run_dir.py), with real processes and SIGKILL."""
import os
import signal
import subprocess
import sys

import pytest

from train_helpers import ROOT, tool_env

from mindclip.train.errors import RunError
from mindclip.train.run_dir import LOCK_NAME, RunLock, check_run_dir, claim_run_dir, run_files

HOLDER = """
import os, sys, time, types
sys.path.insert(0, {root!r})
train = types.ModuleType("mindclip.train")  # skip the package's __init__ (it loads MindSpore): a fast holder
train.__path__ = [os.path.join({root!r}, "mindclip", "train")]
sys.modules["mindclip.train"] = train
from mindclip.train.run_dir import RunLock
RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def start_holder(directory):
    """A real process holding `directory`'s lock until killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=ROOT), str(directory)], env=tool_env(),
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def kill(proc):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_live_holder_refuses_a_second_run_naming_its_pid(tmp_path):
    holder = start_holder(tmp_path)
    try:
        with pytest.raises(RunError, match=rf"in use by another run \(pid {holder.pid} on "):
            check_run_dir(str(tmp_path))  # the read-only probe every rank makes
        with pytest.raises(RunError, match=rf"pid {holder.pid}"):
            RunLock(str(tmp_path)).acquire()
    finally:
        kill(holder)


def test_a_sigkilled_holder_leaves_a_stale_lock_that_the_next_run_takes_over(tmp_path):
    holder = start_holder(tmp_path)
    kill(holder)
    assert os.path.isfile(tmp_path / LOCK_NAME)  # SIGKILL left the file behind
    said = []
    lock = claim_run_dir(str(tmp_path), say=said.append)
    try:
        assert len(said) == 1 and f"stale lock of pid {holder.pid}" in said[0]
        with open(tmp_path / LOCK_NAME, encoding="utf-8") as f:
            assert f'"pid": {os.getpid()}' in f.read()
    finally:
        lock.release()
    assert not os.path.exists(tmp_path / LOCK_NAME)  # a clean end deletes the file: no stale message next time
    said.clear()
    claim_run_dir(str(tmp_path), say=said.append).release()
    assert said == []


def make_run(directory, *names):
    os.makedirs(directory, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"x")


def test_a_directory_holding_a_run_is_refused_without_resume_or_overwrite(tmp_path):
    make_run(tmp_path, "config.yaml", "train_log.jsonl", "ckpt_step00000004.ckpt", "run.yaml")
    with pytest.raises(RunError, match=r"already holds a run \(ckpt_step00000004.ckpt, config.yaml, "
                                       r"train_log.jsonl\).*--resume auto.*--overwrite"):
        check_run_dir(str(tmp_path))
    check_run_dir(str(tmp_path), resume="auto")
    check_run_dir(str(tmp_path), resume=str(tmp_path / "ckpt_step00000004.ckpt"))
    other = tmp_path / "elsewhere"
    make_run(other, "ckpt_step00000002.ckpt")
    with pytest.raises(RunError, match=r"--resume .*elsewhere.* holds another run"):
        check_run_dir(str(tmp_path), resume=str(other / "ckpt_step00000002.ckpt"))
    with pytest.raises(RunError, match="--overwrite would delete the run that --resume auto continues"):
        check_run_dir(str(tmp_path), resume="auto", overwrite=True)
    assert len(run_files(str(tmp_path))) == 3  # refusals touch nothing


def test_overwrite_deletes_only_the_earlier_runs_files(tmp_path):
    make_run(tmp_path, "config.yaml", "train_log.jsonl", "last.ckpt", "ckpt_step00000004.ckpt",
             "ckpt_step00000006.ckpt.rejected", "run.yaml", "notes.txt")
    said = []
    claim_run_dir(str(tmp_path), overwrite=True, say=said.append).release()
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "run.yaml"]
    assert "deleted 5 files" in said[0]


def test_release_then_reacquire_in_one_process(tmp_path):
    first = RunLock(str(tmp_path))
    assert first.acquire() is None
    with pytest.raises(RunError, match=f"pid {os.getpid()}"):  # flock is per open file: refused here too
        RunLock(str(tmp_path)).acquire()
    first.release()
    second = RunLock(str(tmp_path))
    assert second.acquire() is None
    second.release()
    assert not os.path.exists(tmp_path / LOCK_NAME)
