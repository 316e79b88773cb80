"""mindclip's train step against open_clip's on the same model and batch, in one invocation.

    python -m tools.bench side_by_side --torch-python /work/refvenv/bin/python --lengths cc3m --buckets 16,32,48

Runs under mindclip's interpreter. Per method it makes one synthetic batch (`mindclip.data.synthetic`,
`--seed`), runs `python -m tools.bench train` on it (graph mode), then `torch_reference` under the
PyTorch interpreter (`--torch-python`, or the environment variable MINDCLIP_TORCH_PYTHON) on the
same arrays with `--flops`. With `--buckets`, mindclip's copy is cut to the batch's text-length bucket
as its pipeline cuts it (`mindclip.data.buckets.TrimToBucket`); open_clip always runs `--text-length`.
Model: `lightclip_mobilenetv2` on both sides (ut/test_torch_reference_parity.py checks that the
PyTorch network has its parameter shapes and computes its objective). FLOPs come from the PyTorch
network (the same layers and shapes); at a cut length they are counted again at that length.
The ratio is open_clip step / mindclip step: above 1, mindclip is faster.
"""
import os
import sys
import tempfile

import numpy as np

from mindclip.data import TEXT_COLUMNS
from mindclip.data.buckets import TrimToBucket, resolve_buckets
from mindclip.data.synthetic import synthetic_arrays
from tools.bench.harness import bench_parser, emit, fail, int_list, run_for_json

MODEL = "lightclip_mobilenetv2"
TORCH_PYTHON_ENV = "MINDCLIP_TORCH_PYTHON"


def parse_args(argv):
    p = bench_parser("side_by_side", __doc__, ["batch", "image_size", "text_length", "lengths", "steps", "warmup",
                                               "json", "seed"], image_size=224)
    p.add_argument("--methods", nargs="+", default=["clip", "lightclip"], choices=["clip", "lightclip"])
    p.add_argument("--buckets", type=int_list, default=None,
                   help="mindclip's text buckets, e.g. 16,32,48 (default: off, both sides run --text-length)")
    p.add_argument("--torch-python", default=os.environ.get(TORCH_PYTHON_ENV),
                   help=f"a Python with torch, open_clip_torch, timm, pillow, scipy (default: ${TORCH_PYTHON_ENV})")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args(argv)
    if not args.torch_python:
        fail(f"--torch-python: give the PyTorch interpreter (or set {TORCH_PYTHON_ENV})")
    if not (os.path.isfile(args.torch_python) and os.access(args.torch_python, os.X_OK)):
        fail(f"--torch-python {args.torch_python}: not an executable file")
    return args


def save_batches(method, args, folder):
    """(.npz of the full batch, .npz of mindclip's copy cut to its bucket)."""
    full = synthetic_arrays(method, args.image_size, args.batch, args.text_length,
                            np.random.default_rng(args.seed), args.lengths)
    cut = dict(full)
    if args.buckets:
        text = TEXT_COLUMNS[method]
        trimmed = TrimToBucket(resolve_buckets(args.buckets, args.text_length), method)(*[full[n] for n in text])
        cut.update(zip(text, trimmed))
    paths = [os.path.join(folder, f"{method}_{kind}.npz") for kind in ("full", "cut")]
    np.savez(paths[0], **full)
    np.savez(paths[1], **cut)
    return paths, cut["tokens"].shape[1]


def row(method, args, folder):
    """One method: both steps timed on the same arrays, FLOPs, ratio."""
    (full_npz, cut_npz), cut_length = save_batches(method, args, folder)
    timing = ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    torch_side = [args.torch_python, "-m", "tools.bench", "torch_reference", "--method", method]
    torch_side += ["--threads", str(args.threads)] if args.threads else []
    ours = run_for_json([sys.executable, "-m", "tools.bench", "train", "--model", MODEL, "--method", method,
                         "--image-size", str(args.image_size), "--batch-npz", cut_npz] + timing, f"mindclip {method}")
    theirs = run_for_json(torch_side + ["--batch-npz", full_npz, "--flops"] + timing, f"open_clip {method}")
    flops = theirs["flops_per_step"]
    our_flops = flops if cut_length == args.text_length else run_for_json(
        torch_side + ["--batch-npz", cut_npz, "--flops-only"], f"FLOP count of {method} at {cut_length}")["flops_per_step"]
    ms_step, oc_step = ours["step_s_median"], theirs["step_s_median"]
    return {"method": method, "model": MODEL, "batch": args.batch, "image_size": args.image_size,
            "lengths": args.lengths, "buckets": args.buckets, "mindclip_text_length": cut_length,
            "open_clip_text_length": args.text_length, "mindclip_step_s": ms_step, "open_clip_step_s": oc_step,
            "ratio_open_clip_over_mindclip": round(oc_step / ms_step, 3), "mindclip_flops_per_step": our_flops,
            "open_clip_flops_per_step": flops, "mindclip_gflops_per_s": round(our_flops / ms_step / 1e9, 2),
            "open_clip_gflops_per_s": round(flops / oc_step / 1e9, 2), "mindclip": ours, "open_clip": theirs}


COLUMNS = (("method", "{method}"), ("text length (mindclip / open_clip)", "{mindclip_text_length} / {open_clip_text_length}"),
           ("mindclip step (s)", "{mindclip_step_s:.3f}"), ("open_clip step (s)", "{open_clip_step_s:.3f}"),
           ("open_clip / mindclip", "{ratio_open_clip_over_mindclip:.2f}x"),
           ("GFLOP per step (mindclip / open_clip)", "{mindclip_gflop:.1f} / {open_clip_gflop:.1f}"),
           ("mindclip GFLOP/s", "{mindclip_gflops_per_s:.1f}"), ("open_clip GFLOP/s", "{open_clip_gflops_per_s:.1f}"))


def markdown_table(rows):
    lines = ["| " + " | ".join(title for title, _ in COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for r in rows:
        gflop = {f"{side}_gflop": r[f"{side}_flops_per_step"] / 1e9 for side in ("mindclip", "open_clip")}
        lines.append("| " + " | ".join(cell.format(**r, **gflop) for _, cell in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    with tempfile.TemporaryDirectory(prefix="mindclip_side_by_side_") as folder:
        rows = [emit(row(method, args, folder), args.json) for method in args.methods]
    theirs = rows[0]["open_clip"]
    print(f"{MODEL}, batch {args.batch}, {args.image_size}x{args.image_size}, fp32, median of {args.steps} steps "
          f"after {args.warmup} warm-up; torch {theirs['torch']}, open_clip {theirs['open_clip']}, timm {theirs['timm']}")
    print(markdown_table(rows))
    return rows
