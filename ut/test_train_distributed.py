"""Data parallel with exact accumulation through real msrun processes: ranks x micro-batches, and two
launchers standing for two nodes, each equal to one process with the whole global batch.

LightCLIP on `tiny_swin` (no BatchNorm), so every part is live: the instance loss over the global
batch and the token / MLM parts averaged over every sample of every rank. lr 1e-4, as in
test_train_runs.py: AdamW divides by sqrt(v), so fp32 summation-order noise grows with the lr.
"""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from train_helpers import ROOT, checkpoint_arrays, max_weight_difference, run_tool, tool_env, write_recipe

GLOBAL_BATCH = 8
STEPS = 3
COMMON = {"method": "lightclip", "model": {"name": "tiny_swin"}, "optim": {"lr": 1e-4, "warmup_fraction": 0.0}}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_losses(output_dir):
    with open(os.path.join(output_dir, "train_log.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    return np.array([[r["loss"]] + list(r["parts"].values()) for r in records if "loss" in r])


def recipe(tmp_path, name, tiny_demo, batch, accumulation_steps):
    out = str(tmp_path / name)
    path = write_recipe(str(tmp_path / f"{name}.yaml"), tiny_demo, out, train={"max_steps": STEPS, "output_dir": out},
                        data={"batch_size": batch}, **dict(COMMON, optim=dict(
                            COMMON["optim"], accumulation_steps=accumulation_steps)))
    return path, out


def msrun(args, log_dir, **launcher):
    cmd = [os.path.join(os.path.dirname(sys.executable), "msrun"), f"--log_dir={log_dir}", "--join=True"]
    cmd += [f"--{key}={value}" for key, value in launcher.items()] + ["tools/train.py"] + args
    return subprocess.Popen(cmd, cwd=ROOT, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def worker_logs(log_dir):
    text = ""
    for name in sorted(os.listdir(log_dir)):
        with open(os.path.join(log_dir, name), errors="replace") as f:
            text += f"--- {name}\n" + f.read()[-2500:]
    return text


@pytest.fixture(scope="module")
def one_process(tiny_demo, tmp_path_factory):
    """The reference: one process, the whole global batch in one step."""
    path, out = recipe(tmp_path_factory.mktemp("single"), "single", tiny_demo, GLOBAL_BATCH, 1)
    result = run_tool(["tools/train.py", "-c", path])
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def assert_equal_runs(out, reference):
    final = f"ckpt_step{STEPS:08d}.ckpt"
    assert max_weight_difference(checkpoint_arrays(os.path.join(out, final)),
                                 checkpoint_arrays(os.path.join(reference, final))) <= 1e-5
    losses, expected = read_losses(out), read_losses(reference)
    assert losses.shape == expected.shape == (STEPS, 5)
    assert np.all(expected[0] > 0.01), expected[0]  # every part is live
    np.testing.assert_allclose(losses, expected, rtol=0, atol=1e-5)


def test_two_ranks_times_two_micro_batches_equal_one_process(one_process, tiny_demo, tmp_path):
    path, out = recipe(tmp_path, "ranks", tiny_demo, GLOBAL_BATCH // 4, 2)
    proc = msrun(["-c", path], tmp_path / "logs", worker_num=2, local_worker_num=2, master_port=free_port())
    output, _ = proc.communicate(timeout=1200)
    assert proc.returncode == 0, output[-2000:] + worker_logs(tmp_path / "logs")
    assert_equal_runs(out, one_process)
    with open(os.path.join(out, "config.yaml"), encoding="utf-8") as f:
        assert "accumulation: features" in f.read()  # the saved config says which accumulation ran
    assert "accumulation=features (exact big-batch loss)" in worker_logs(tmp_path / "logs")


def test_two_nodes_on_one_machine_equal_one_process(one_process, tiny_demo, tmp_path):
    """Two msrun launchers (node_rank 0 and 1, one worker each, master 127.0.0.1), as on two machines."""
    path, out = recipe(tmp_path, "nodes", tiny_demo, GLOBAL_BATCH // 4, 2)
    port = free_port()
    nodes = [msrun(["-c", path], tmp_path / f"logs{rank}", worker_num=2, local_worker_num=1, node_rank=rank,
                   master_addr="127.0.0.1", master_port=port) for rank in (0, 1)]
    outputs = [node.communicate(timeout=1200)[0] for node in nodes]
    for rank, (node, output) in enumerate(zip(nodes, outputs)):
        assert node.returncode == 0, output[-2000:] + worker_logs(tmp_path / f"logs{rank}")
    assert_equal_runs(out, one_process)
