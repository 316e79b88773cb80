"""Data parallel through real msrun processes, each run equal to one process with the whole global
batch: 2 ranks x 2 micro-batches (exact accumulation), and two launchers standing for two nodes
(1 rank each, no accumulation: the plain data-parallel step).

Two nodes on one machine: msrun starts the scheduler on the node whose own address is
`--master_addr`, so two launchers sharing one network stack would both start one (with 127.0.0.1,
both see it as theirs). Node 1 therefore runs in its own network namespace, joined to this one by a
virtual ethernet link (`ip netns`, `ip link ... type veth`; needs root, as CI has): two network
stacks, real TCP between them, the same file system standing for shared storage.

LightCLIP on `tiny_swin` (no BatchNorm), so every part is live: the instance loss over the global
batch and the token / MLM parts averaged over every sample of every rank. lr 1e-4, as in
test_train_runs.py: AdamW divides by sqrt(v), so fp32 summation-order noise grows with the lr.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import uuid

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


def msrun(args, log_dir, netns=None, **launcher):
    """An msrun launcher of tools/train.py (in the network namespace `netns` if given)."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "msrun"), f"--log_dir={log_dir}", "--join=True"]
    cmd += [f"--{key}={value}" for key, value in launcher.items()] + ["tools/train.py"] + args
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    return subprocess.Popen(cmd, cwd=ROOT, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def wait_all(launchers, timeout=1200):
    """Each launcher's output; on a timeout every launcher's process group (workers too) is killed."""
    try:
        return [launcher.communicate(timeout=timeout)[0] for launcher in launchers]
    finally:
        for launcher in launchers:
            if launcher.poll() is None:
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()


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
    output, = wait_all([proc])
    assert proc.returncode == 0, output[-2000:] + worker_logs(tmp_path / "logs")
    assert_equal_runs(out, one_process)
    with open(os.path.join(out, "config.yaml"), encoding="utf-8") as f:
        assert "accumulation: features" in f.read()  # the saved config says which accumulation ran
    assert "accumulation=features (exact big-batch loss)" in worker_logs(tmp_path / "logs")


@pytest.fixture
def second_node():
    """A network namespace joined to this one by a veth pair: (its name, this side's address)."""
    tag = uuid.uuid4().hex[:6]
    name, host_if, node_if = f"mc-node1-{tag}", f"mc0{tag}", f"mc1{tag}"
    host_ip, node_ip = "10.213.7.1", "10.213.7.2"
    commands = [["ip", "netns", "add", name], ["ip", "link", "add", host_if, "type", "veth", "peer", "name", node_if],
                ["ip", "link", "set", node_if, "netns", name], ["ip", "addr", "add", f"{host_ip}/24", "dev", host_if],
                ["ip", "link", "set", host_if, "up"],
                ["ip", "netns", "exec", name, "ip", "addr", "add", f"{node_ip}/24", "dev", node_if],
                ["ip", "netns", "exec", name, "ip", "link", "set", node_if, "up"],
                ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"]]
    try:
        for command in commands:
            done = subprocess.run(command, capture_output=True, text=True)
            assert done.returncode == 0, f"cannot simulate a second node: {' '.join(command)}: {done.stderr.strip()}"
        yield name, host_ip
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)  # removes node_if, hence host_if too
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)


def test_two_nodes_equal_one_process(one_process, tiny_demo, tmp_path, second_node):
    """Two msrun launchers (node_rank 0 and 1, one worker each) on two network stacks, as on two machines."""
    namespace, master = second_node
    path, out = recipe(tmp_path, "nodes", tiny_demo, GLOBAL_BATCH // 2, 1)  # the plain (K = 1) data-parallel step
    port = free_port()
    nodes = [msrun(["-c", path], tmp_path / f"logs{rank}", worker_num=2, local_worker_num=1, node_rank=rank,
                   master_addr=master, master_port=port, netns=namespace if rank else None) for rank in (0, 1)]
    outputs = wait_all(nodes)
    for rank, (node, output) in enumerate(zip(nodes, outputs)):
        assert node.returncode == 0, output[-2000:] + worker_logs(tmp_path / f"logs{rank}")
    assert_equal_runs(out, one_process)
    assert not os.path.exists(os.path.join(out, "rank_1"))  # only rank 0 writes
