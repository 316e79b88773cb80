"""tools/ablate.py end to end with the real tools: a sweep process is SIGKILLed mid-run and resumed;
finished runs are not run again, the interrupted one continues, a failing row is recorded and shown
as failed; the msrun launch line; clear errors for bad input."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tool_loader import ROOT, load_tool

RECIPE = os.path.join(ROOT, "ascend_configs", "demo_cpu.yaml")
ROWS = """\
title: kill-and-resume test
rows:
  - id: base
    name: CLIP, one step
    overrides: {method: clip, loss.inst_weight: 1.0, loss.token_weight: 0.0, loss.mlm_weight: 0.0,
                loss.r1: 1.0, loss.r2: 1.0}
  - id: broken
    name: missing initial weights
    overrides: {method: clip, model.checkpoint: /nonexistent/initial.ckpt}
"""


def sweep_argv(demo, out, rows_file, *extra):
    shards = os.path.join(demo, "mindrecord")
    return ["-c", RECIPE, "--table", rows_file, "--seeds", "0,1", "--out", out,
            "--eval", f"zeroshot --dataset demo --root {demo} --batch-size 32",
            "--set", f"data.train_shards={shards}/train-*.mindrecord",
            "--set", f"data.val_shards={shards}/val-*.mindrecord",
            "--set", "train.max_steps=1", "--set", "data.batch_size=8", "--set", "data.num_workers=1", *extra]


def processes_of(path):
    """Pids of live processes whose command line mentions `path` (this test's own children)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if path.encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            continue
    return pids


def wait_for(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def launches(log):
    with open(log, encoding="utf-8", errors="replace") as f:
        return sum(line.startswith("$ ") for line in f)


def kill_sweep_in_second_run(argv, tmp_path, out, first, second):
    """Start a real sweep process; SIGKILL it once the first run has finished and the second is training."""
    console = open(tmp_path / "sweep.out", "wb")
    sweep = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "ablate.py")] + argv, cwd=str(tmp_path),
                             stdout=console, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: os.path.isfile(os.path.join(first, "result.json")), 600, "the first run to finish")
        wait_for(lambda: processes_of(os.path.join(second, "train")), 120, "the second run's training to start")
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
        # the training child dies with the sweep (PR_SET_PDEATHSIG), so nothing races the resumed sweep
        wait_for(lambda: not processes_of(os.path.join(second, "train")), 15, "the orphaned training to end")
    finally:
        for pid in processes_of(out):  # only this test's processes: their command lines name its tmp folder
            os.kill(pid, signal.SIGKILL)
        console.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")
def test_killed_sweep_resumes_and_records_failures(tiny_demo, tmp_path):
    out = str(tmp_path / "sweep")
    rows_file = str(tmp_path / "rows.yaml")
    with open(rows_file, "w", encoding="utf-8") as f:
        f.write(ROWS)
    argv = sweep_argv(tiny_demo, out, rows_file)
    runs = os.path.join(out, "runs")
    first, second = os.path.join(runs, "base", "seed0"), os.path.join(runs, "base", "seed1")
    kill_sweep_in_second_run(argv, tmp_path, out, first, second)
    assert not os.path.exists(os.path.join(second, "result.json"))
    with open(os.path.join(first, "result.json"), "rb") as f:
        first_result = f.read()
    first_mtime = os.path.getmtime(os.path.join(first, "result.json"))

    ablate = load_tool("ablate")
    assert ablate.main(argv) == 1  # a row failed: exit status 1, everything else done

    with open(os.path.join(first, "result.json"), "rb") as f:
        assert f.read() == first_result and os.path.getmtime(os.path.join(first, "result.json")) == first_mtime
    assert launches(os.path.join(first, "train.out")) == 1 and launches(os.path.join(first, "eval.out")) == 1
    assert launches(os.path.join(second, "train.out")) == 2  # the killed attempt, then the resumed one
    done = json.load(open(os.path.join(second, "result.json"), encoding="utf-8"))
    assert done["status"] == "done" and done["train"]["steps"] == 1
    assert 0.0 <= done["metrics"]["demo/zeroshot/acc1"] <= 1.0
    broken = json.load(open(os.path.join(runs, "broken", "seed0", "result.json"), encoding="utf-8"))
    assert broken["status"] == "failed" and broken["stage"] == "train" and broken["exit_status"] != 0
    assert "/nonexistent/initial.ckpt" in broken["error"]

    report = open(os.path.join(out, "ablation.md"), encoding="utf-8").read().splitlines()
    start = next(i for i, line in enumerate(report) if line.startswith("| row |"))
    table = {line.split(" | ")[0][2:]: line for line in report[start + 2:report.index("", start)]}
    assert table["CLIP, one step"].endswith("| 2/2 |")
    assert "| failed |" in table["missing initial weights"]
    assert table["missing initial weights"].endswith("| 0/2, 2 failed |")
    summary = json.load(open(os.path.join(out, "ablation.json"), encoding="utf-8"))
    assert [r["status"] for r in summary["runs"]] == ["done", "done", "failed", "failed"]
    values = [json.load(open(os.path.join(runs, "base", f"seed{s}", "result.json")))["metrics"]["demo/zeroshot/acc1"]
              for s in (0, 1)]
    assert summary["rows"][0]["stats"]["demo/zeroshot/acc1"]["mean"] == pytest.approx(sum(values) / 2)

    # again: nothing runs; failed runs stay failed unless asked
    assert ablate.main(argv) == 1
    assert launches(os.path.join(runs, "broken", "seed0", "train.out")) == 1
    assert ablate.main(argv + ["--retry-failed", "--rows", "broken"]) == 1
    assert launches(os.path.join(runs, "broken", "seed0", "train.out")) == 2
    assert launches(os.path.join(second, "train.out")) == 2

    # a changed plan is refused rather than mixed with the finished runs
    assert ablate.main(argv + ["--set", "optim.lr=1.0e-4"]) == 2


def test_msrun_launch_line_and_bad_input(tiny_demo, tmp_path, capsys):
    ablate = load_tool("ablate")
    out = str(tmp_path / "sweep")
    argv = sweep_argv(tiny_demo, out, "lightclip-table4")[:-6] + ["--rows", "mlm", "--seeds", "4"]
    assert ablate.main(argv + ["--launcher", "msrun", "--cards", "2", "--master-port", "9000", "--dry-run"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[mlm seed 4] ")]
    train = lines[0].split("] ", 1)[1].split()
    assert os.path.basename(train[0]) == "msrun"
    assert train[1:6] == ["--worker_num=2", "--local_worker_num=2", "--master_port=9001",  # run 1 of the plan
                          f"--log_dir={os.path.join(out, 'runs', 'mlm', 'seed4', 'msrun')}", "--join=True"]
    assert train[6] == os.path.join(ROOT, "tools", "train.py") and train[-2:] == ["--resume", "auto"]
    assert "loss.mlm_weight=0.1" in train and "train.seed=4" in train and "loss.token_weight=0.0" in train
    assert not os.path.exists(out)  # a dry run writes nothing

    i = argv.index("--eval")
    no_eval = argv[:i] + argv[i + 2:]
    for extra, message in [
        (["--cards", "2"], "--cards 2: a local launch uses one process"),
        (["--eval", "zeroshot --dataset demo --root /nonexistent/x"], "--root /nonexistent/x does not exist"),
        (["--eval", "zeroshot --dataset demo --root . --model x"], "--model is set by the sweep"),
        (["--eval", "segment --dataset demo --root ."], "must start with the task"),
        (["--eval", "zeroshot --dataset demo --root . --layout nope"], "argument --layout: invalid choice"),
        (["--set", "loss.mlm_weight=0.5"], "--set loss.mlm_weight: row 'CLIP'"),
        (["--seeds", "a"], "--seeds must be comma-separated integers"),
        (["--eval", "retrieval --dataset demo --root ."] * 2, "'demo retrieval' is given twice"),
    ]:
        extra = extra if "--eval" in extra else extra + argv[i:i + 2]
        assert ablate.main(no_eval + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
