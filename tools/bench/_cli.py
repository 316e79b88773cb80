"""The harness every benchmark shares; NumPy only, so that the PyTorch side imports it too: one flag
vocabulary (a concept has one flag, with one meaning, everywhere), the timer, JSON lines, one-line
errors (exit status 2), and the names of a train step's pieces on both sides."""
import argparse
import collections
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from mindclip._io import append_json_line
from mindclip.data.columns import METHODS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRESS = 0.7  # the step's training-progress input: LightCLIP's importance-aware regime (r2 = 0.66)


def fail(message):
    """A one-line error on stderr and exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def int_list(text):
    """An argparse type: "16,32" -> [16, 32], positive integers."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give positive integers, e.g. 16,32")
    return values


def at_least(minimum):
    """An argparse type: an integer >= minimum."""
    def parse(text):
        if not text.lstrip("-").isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be an integer >= {minimum}")
        return int(text)
    return parse


FLAGS = {  # name -> (flag, argparse keywords); a benchmark picks the ones it honours
    "model": ("--model", dict(default="lightclip_mobilenetv2", help="model preset (mindclip.list_models())")),
    "method": ("--method", dict(default="clip", choices=METHODS)),
    "batch": ("--batch", dict(type=at_least(1), default=32, help="samples per batch (per micro-batch)")),
    "batches": ("--batches", dict(type=int_list, default=None, help="several batch sizes, e.g. 16,32")),
    "image_size": ("--image-size", dict(type=at_least(1), default=None, help="default: the preset's")),
    "text_length": ("--text-length", dict(type=at_least(3), default=77, help="token positions per caption row")),
    "lengths": ("--lengths", dict(default="uniform", choices=("uniform", "cc3m"),
                                  help="caption lengths: uniform (EOT at 5..L-2) or CC3M-like (median 12 tokens)")),
    "steps": ("--steps", dict(type=at_least(1), default=5, help="timed calls")),
    "warmup": ("--warmup", dict(type=at_least(0), default=2, help="untimed calls after the first (compiling) one")),
    "set": ("--set", dict(dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                          help="RunConfig override, e.g. loss.mlm_weight=0 (repeatable)")),
    "json": ("--json", dict(default=None, help="append the result as one JSON line to this file")),
    "device_target": ("--device-target", dict(default="CPU", choices=("CPU", "GPU", "Ascend"))),
    "workers": ("--workers", dict(type=int_list, default=[2], help="worker (thread) counts, e.g. 1,2")),
    "seed": ("--seed", dict(type=at_least(0), default=0, help="seed of the synthetic inputs")),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        fail(f"{self.prog}: {message}")


def bench_parser(name, doc, flags, **defaults):
    """An ArgumentParser with the vocabulary's `flags` (names of FLAGS), `defaults` replacing theirs."""
    parser = _Parser(prog=f"python -m tools.bench {name}", description=doc, allow_abbrev=False,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for key in flags:
        flag, keywords = FLAGS[key]
        keywords = dict(keywords)
        if key in defaults:
            keywords["default"] = defaults.pop(key)
        parser.add_argument(flag, **keywords)
    return parser


def host_sync(output):
    """Wait for every Tensor in `output` (nested tuples/lists too): MindSpore launches asynchronously."""
    if hasattr(output, "asnumpy"):
        output.asnumpy()
    elif isinstance(output, (tuple, list)):
        for leaf in output:
            host_sync(leaf)
    return output


Timing = collections.namedtuple("Timing", "first_s median_s min_s cpu_median_s")


def time_calls(call, steps, warmup=0, sync=host_sync):
    """Time `call()`: the first call (compile + run), `warmup` untimed calls, then `steps` timed calls.

    Each call is followed by `sync(output)` inside its timing. CPU seconds are the process's (all
    threads): they hardly move when other processes share the cores, wall seconds do.
    """
    start = time.perf_counter()
    sync(call())
    first = time.perf_counter() - start
    for _ in range(warmup):
        sync(call())
    walls, cpus = [], []
    for _ in range(steps):
        wall, cpu = time.perf_counter(), time.process_time()
        sync(call())
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Timing(first, statistics.median(walls), min(walls), statistics.median(cpus))


def peak_rss_gib():
    """The peak resident memory of this process so far (ru_maxrss), GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def emit(result, json_path):
    """Print `result` as one JSON line and append it to `json_path` (if any); returns it."""
    print(json.dumps(result), flush=True)
    append_json_line(json_path, result)
    return result


def run_for_json(command, what):
    """Run a benchmark subprocess (`command` without --json) and return the JSON line it appended."""
    with tempfile.TemporaryDirectory(prefix="mindclip_bench_") as folder:
        out = os.path.join(folder, "result.jsonl")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
        proc = subprocess.run(command + ["--json", out], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, check=False)
        if proc.returncode != 0 or not os.path.exists(out):
            last = (proc.stdout.strip().splitlines() or ["no output"])[-1]
            fail(f"{what} failed (exit {proc.returncode}): {last}")
        with open(out, encoding="utf-8") as f:
            return json.loads(f.read().strip().splitlines()[-1])


def without_flags(argv, flags):
    """`argv` without each of `flags` and its value (`--flag value` or `--flag=value`)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        elif not arg.startswith(tuple(f + "=" for f in flags)):
            out.append(arg)
    return out


def load_npz_batch(path, columns):
    """The arrays `columns` (in that order) of an .npz batch (e.g. written by the side-by-side)."""
    if not os.path.isfile(path):
        fail(f"--batch-npz {path}: no such file")
    with np.load(path) as data:
        missing = [c for c in columns if c not in data.files]
        if missing:
            fail(f"--batch-npz {path}: no array {missing[0]!r} (a batch of this method has {list(columns)})")
        return [data[c] for c in columns]


STEP_PIECES = {  # each forward + backward as its own graph unless said otherwise, on fixed inputs
    "image_tower": "the image tower to the pooled, projected features",
    "text_tower": "the text tower (token table included) to the EOT-pooled features",
    "token_table": "only the token lookup and its (vocab x width) table gradient",
    "text_no_table": "the text tower with a frozen token table (the difference is the table gradient)",
    "inst_loss": "the contrastive parts (soft targets) on fixed features",
    "token_loss": "token alignment with the host Hungarian op on fixed tokens [lightclip, token_weight > 0]",
    "mlm_branch": "masked-text pass, fusion, both MLM heads and their losses [lightclip, mlm_weight > 0]",
    "optimizer": "AdamW over every trainable weight, forward only",
}


def parse_pieces(text, available):
    """`--pieces` "all" (those of `available`) or a comma-separated list, each of `available`."""
    if text == "all":
        return [name for name in STEP_PIECES if name in available]
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in STEP_PIECES:
            fail(f"--pieces: unknown piece {name!r}; choose from all, {', '.join(STEP_PIECES)}")
        if name not in available:
            fail(f"--pieces: {name!r} is not part of this step ({STEP_PIECES[name]})")
    return names


OPS = ("matmul", "gelu", "gelu_fwd_bwd", "layer_norm", "mul_add")  # `ops`: single ops of a text tower's MLP


def op_shapes(batch, text_length, width):
    """x (rows, width), w (4 width, width), h (rows, 4 width) with rows = batch * text_length."""
    rows, hidden = batch * text_length, 4 * width
    return {"x": [rows, width], "w": [hidden, width], "h": [rows, hidden]}
