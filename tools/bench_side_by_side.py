"""Side-by-side train-step benchmark: mindclip (MindSpore) against open_clip (PyTorch), same model and batch.

    python tools/bench_side_by_side.py --batch 32 --image-size 224 --steps 5 --warmup 2
    python tools/bench_side_by_side.py --lengths cc3m --buckets 16,32,48 --json bench.jsonl
    python tools/bench_side_by_side.py --mindclip-root /tmp/mindclip-before    # an older checkout

Runs under mindclip's interpreter. For each method (default: clip and lightclip) it builds one
fixed synthetic batch (`synthetic_arrays` of tools/bench_train.py, NumPy `default_rng(0)`, caption
lengths `--lengths`), runs tools/bench_train.py on it (graph mode) and then tools/bench_open_clip.py
under the PyTorch interpreter (`--torch-python`, env MINDCLIP_TORCH_PYTHON, default
/work/refvenv/bin/python) on the same arrays, with `--count-flops`. With `--buckets` mindclip's copy
of the batch is cut to the batch's text-length bucket exactly as its pipeline does
(`mindclip.data.buckets.TrimToBucket`); open_clip always runs the full `--text-length` rows, as it does.

The model is `lightclip_mobilenetv2` on both sides (open_clip CLIP + timm mobilenetv2_100 cut at 320
channels; see tools/bench_open_clip.py). FLOPs per step come from PyTorch's FlopCounterMode on the
open_clip network (forward + backward of one step; matrix products, convolutions, attention) and
are used for both rows: the two networks have the same layers and shapes; for a cut batch mindclip's
FLOPs are counted again at the cut length (`bench_open_clip.py --count-flops-only`).

The table's ratio is open_clip step / mindclip step: above 1 means mindclip is faster.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_TRAIN = os.path.join(ROOT, "tools", "bench_train.py")
BENCH_OPEN_CLIP = os.path.join(ROOT, "tools", "bench_open_clip.py")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))  # sibling tools (bench_train)
from mindclip._io import append_json_line  # noqa: E402
MODEL = "lightclip_mobilenetv2"
DEFAULT_TORCH_PYTHON = "/work/refvenv/bin/python"
BATCH_COLUMNS = {"clip": ("images", "tokens"),
                 "lightclip": ("images", "tokens", "mlm_tokens", "mlm_positions", "mlm_labels")}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=["clip", "lightclip"], choices=sorted(BATCH_COLUMNS))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--text-length", type=int, default=77, help="token positions (open_clip always uses this)")
    p.add_argument("--lengths", default="uniform", choices=["uniform", "cc3m"],
                   help="caption lengths of the synthetic batch (tools/bench_train.py --lengths)")
    p.add_argument("--buckets", default="",
                   help="mindclip's text buckets, e.g. 16,32,48: its copy of the batch is cut to the batch's "
                        "bucket exactly as the pipeline does (default: off, both sides run --text-length)")
    p.add_argument("--mindclip-root", default=ROOT,
                   help="the mindclip checkout whose tools/bench_train.py runs (e.g. an older commit for a "
                        "before/after table; it then builds the batch itself: needs --lengths uniform, no --buckets)")
    p.add_argument("--steps", type=int, default=5, help="timed steps after the warm-up ones (both sides)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after the first one (both sides)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: bench_open_clip's)")
    p.add_argument("--torch-python", default=os.environ.get("MINDCLIP_TORCH_PYTHON", DEFAULT_TORCH_PYTHON),
                   help="PyTorch interpreter with open_clip_torch, timm and scipy (env MINDCLIP_TORCH_PYTHON)")
    p.add_argument("--json", default=None, help="append one JSON line per method to this file")
    return p.parse_args(argv)


def save_batch(arrays, path):
    np.savez(path, **arrays)
    return path


def make_batches(method, args):
    """(open_clip's arrays with full rows, mindclip's arrays cut to the batch's bucket)."""
    import bench_train
    full = bench_train.synthetic_arrays(method, args.image_size, args.batch, args.text_length,
                                        np.random.default_rng(0), args.lengths)
    if not args.buckets:
        return full, full
    from mindclip.data.buckets import TrimToBucket, resolve_buckets

    buckets = resolve_buckets([int(b) for b in args.buckets.split(",") if b.strip()], args.text_length)
    names = [n for n in full if n != "images"]
    cut = TrimToBucket(buckets, method)(*[full[n] for n in names])
    return full, dict(images=full["images"], **dict(zip(names, cut)))


def run_for_json(command, json_path, what):
    """Run a benchmark subprocess that appends its result to `json_path`; return the last JSON line."""
    print(f"[side-by-side] {what}: {' '.join(command)}", file=sys.stderr, flush=True)
    proc = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False)
    if proc.returncode != 0 or not os.path.exists(json_path):
        tail = "\n".join(proc.stdout.splitlines()[-30:])
        raise SystemExit(f"{what} failed (exit {proc.returncode}):\n{tail}")
    with open(json_path, encoding="utf-8") as f:
        return json.loads(f.read().strip().splitlines()[-1])


def check_torch_python(path):
    """Versions from the PyTorch side, or a clear error when it is missing or cannot import open_clip."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise SystemExit(f"PyTorch interpreter {path!r} not found or not executable: give --torch-python or "
                         f"set MINDCLIP_TORCH_PYTHON to a Python with torch, open_clip_torch, timm and scipy")
    proc = subprocess.run([path, BENCH_OPEN_CLIP, "--check-import"], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        raise SystemExit(f"{path} cannot import open_clip / timm for tools/bench_open_clip.py:\n{tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class SideBySide:
    """The runs of one invocation, in a temporary directory (batches and JSON outputs)."""

    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        if os.path.abspath(args.mindclip_root) != ROOT and (args.buckets or args.lengths != "uniform"):
            raise SystemExit("--mindclip-root: the other checkout builds its own batch; use --lengths uniform "
                             "and no --buckets")

    def _path(self, name):
        return os.path.join(self.workdir, name)

    def _shape_args(self, method, length):
        a = self.args
        return ["--method", method, "--batch", str(a.batch), "--image-size", str(a.image_size),
                "--text-length", str(length)]

    def _timing_args(self):
        return ["--steps", str(self.args.steps), "--warmup", str(self.args.warmup)]

    def mindclip(self, method, batch_npz):
        out = self._path(f"mindclip_{method}.jsonl")
        bench = os.path.join(self.args.mindclip_root, "tools", "bench_train.py")
        command = [sys.executable, bench, "--model", MODEL] + self._shape_args(method, self.args.text_length)
        if os.path.abspath(self.args.mindclip_root) == ROOT:
            command += ["--batch-npz", batch_npz]
        return run_for_json(command + self._timing_args() + ["--json", out], out, f"mindclip {method}")

    def open_clip(self, method, batch_npz):
        out = self._path(f"open_clip_{method}.jsonl")
        command = ([self.args.torch_python, BENCH_OPEN_CLIP] + self._shape_args(method, self.args.text_length)
                   + self._timing_args() + ["--batch-npz", batch_npz, "--count-flops", "--json", out])
        if self.args.threads:
            command += ["--threads", str(self.args.threads)]
        return run_for_json(command, out, f"open_clip {method}")

    def flops_of(self, method, arrays, batch_npz):
        """FLOPs of one step on a batch of another text length (the open_clip network, counted, not timed)."""
        length = arrays["tokens"].shape[1]
        out = self._path(f"flops_{method}_{length}.jsonl")
        command = ([self.args.torch_python, BENCH_OPEN_CLIP] + self._shape_args(method, length)
                   + ["--batch-npz", batch_npz, "--count-flops-only", "--json", out])
        return run_for_json(command, out, f"FLOP count {method} at length {length}")["flops_per_step"]

    def row(self, method):
        a = self.args
        full, cut = make_batches(method, a)
        full_npz = save_batch(full, self._path(f"batch_{method}_full.npz"))
        cut_npz = save_batch(cut, self._path(f"batch_{method}_cut.npz"))
        ms_result = self.mindclip(method, cut_npz)
        oc_result = self.open_clip(method, full_npz)
        oc_flops = oc_result["flops_per_step"]
        ms_length = cut["tokens"].shape[1]
        ms_flops = oc_flops if ms_length == a.text_length else self.flops_of(method, cut, cut_npz)
        ms_step, oc_step = ms_result["step_s_median"], oc_result["step_s_median"]
        return {
            "method": method, "model": MODEL, "batch": a.batch, "image_size": a.image_size,
            "lengths": a.lengths, "buckets": a.buckets, "mindclip_root": os.path.abspath(a.mindclip_root),
            "mindclip_text_length": ms_length, "open_clip_text_length": a.text_length,
            "mindclip_step_s": ms_step, "open_clip_step_s": oc_step,
            "ratio_open_clip_over_mindclip": round(oc_step / ms_step, 3),
            "mindclip_flops_per_step": ms_flops, "open_clip_flops_per_step": oc_flops,
            "mindclip_gflops_per_s": round(ms_flops / ms_step / 1e9, 2),
            "open_clip_gflops_per_s": round(oc_flops / oc_step / 1e9, 2),
            "mindclip": ms_result, "open_clip": oc_result,
        }


def markdown_table(rows):
    """One line per method: step times, ratio (>1 = mindclip faster), FLOPs and achieved GFLOP/s."""
    lines = ["| method | text length (mindclip / open_clip) | mindclip step (s) | open_clip step (s) "
             "| open_clip / mindclip | GFLOP per step (mindclip / open_clip) | mindclip GFLOP/s "
             "| open_clip GFLOP/s |",
             "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['mindclip_text_length']} / {r['open_clip_text_length']} "
            f"| {r['mindclip_step_s']:.3f} | {r['open_clip_step_s']:.3f} | {r['ratio_open_clip_over_mindclip']:.2f}x "
            f"| {r['mindclip_flops_per_step'] / 1e9:.1f} / {r['open_clip_flops_per_step'] / 1e9:.1f} "
            f"| {r['mindclip_gflops_per_s']:.1f} | {r['open_clip_gflops_per_s']:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    versions = check_torch_python(args.torch_python)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mindclip_side_by_side_") as workdir:
        runs = SideBySide(args, workdir)
        for method in args.methods:
            row = runs.row(method)
            row["open_clip_versions"] = versions
            rows.append(row)
            append_json_line(args.json, row)
    print(f"{MODEL}, batch {args.batch}, {args.image_size}x{args.image_size}, fp32, "
          f"{args.steps} timed steps after {args.warmup} warm-up (median); open_clip: torch {versions['torch']}, "
          f"open_clip {versions['open_clip']}, timm {versions['timm']}")
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
