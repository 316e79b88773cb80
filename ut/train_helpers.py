"""Shared pieces of the training tests: tiny run recipes and reading checkpoints back."""
import os
import subprocess
import sys

import numpy as np
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_recipe(path, data_dir, output_dir, **sections):
    """A tiny CLIP recipe over the tiny demo shards; `sections` update it (e.g. train={...})."""
    recipe = {
        "method": "clip",
        "model": {"name": "tiny_mobilenetv2"},
        "data": {"train_shards": os.path.join(data_dir, "mindrecord", "train-*.mindrecord"),
                 "batch_size": 8, "image_size": 64, "augment": "none", "num_workers": 1,
                 "context_length": 32},
        "optim": {"lr": 1e-3},
        "train": {"epochs": 1, "output_dir": output_dir, "log_every": 100},
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            recipe.setdefault(name, {}).update(values)
        else:
            recipe[name] = values
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(recipe, f)
    return path


def tool_env():
    """Environment for tool subprocesses: this interpreter's bin first on PATH (msrun starts `python`)."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    env.setdefault("GLOG_v", "3")
    return env


def run_tool(args, timeout=600, **kwargs):
    return subprocess.run([sys.executable] + args, cwd=ROOT, env=tool_env(), capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def checkpoint_arrays(path, prefix_filter=None):
    """name -> numpy array of every entry of a MindSpore checkpoint."""
    import mindspore as ms

    state = ms.load_checkpoint(path)
    return {k: v.asnumpy() for k, v in state.items() if prefix_filter is None or k.startswith(prefix_filter)}


def max_weight_difference(a, b, skip=("meta.",)):
    keys = [k for k in a if not k.startswith(skip)]
    assert set(keys) == {k for k in b if not k.startswith(skip)}
    return max(float(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).max()) for k in keys)


def corrupt_middle(path, size=4096, seed=0):
    """Overwrite `size` bytes in the middle of the file with random bytes (issue 16's probe)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    middle = len(data) // 2
    data[middle:middle + size] = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(bytes(data))
