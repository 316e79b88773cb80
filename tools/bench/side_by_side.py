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
The ratio is open_clip step / mindclip step: above 1, mindclip is faster. The batches, the row and
the table are `mindclip.bench.side_by_side`.
"""
import os
import sys
import tempfile

from mindclip.bench import side_by_side as library
from mindclip.bench.harness import BatchSpec, emit
from mindclip.data.buckets import resolve_buckets
from tools.bench._cli import bench_parser, fail, int_list, refusing, run_for_json

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
    try:
        resolve_buckets(args.buckets or (), args.text_length)
    except ValueError as error:
        fail(f"--buckets: {error}")
    if not args.torch_python:
        fail(f"--torch-python: give the PyTorch interpreter (or set {TORCH_PYTHON_ENV})")
    if not (os.path.isfile(args.torch_python) and os.access(args.torch_python, os.X_OK)):
        fail(f"--torch-python {args.torch_python}: not an executable file")
    args.spec = BatchSpec(args.batch, args.text_length, args.lengths, args.seed)
    return args


def row(method, args, folder):
    """One method: mindclip's train on the cut batch, open_clip's step on the full one (FLOPs at both)."""
    (full_npz, cut_npz), cut_length = library.save_batches(method, args.spec, args.image_size, args.buckets, folder)
    timing = ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    torch_side = [args.torch_python, "-m", "tools.bench", "torch_reference", "--method", method]
    torch_side += ["--threads", str(args.threads)] if args.threads else []
    ours = run_for_json([sys.executable, "-m", "tools.bench", "train", "--model", library.MODEL, "--method", method,
                         "--image-size", str(args.image_size), "--batch-npz", cut_npz] + timing, f"mindclip {method}")
    theirs = run_for_json(torch_side + ["--batch-npz", full_npz, "--flops"] + timing, f"open_clip {method}")
    our_flops = theirs["flops_per_step"] if cut_length == args.text_length else run_for_json(
        torch_side + ["--batch-npz", cut_npz, "--flops-only"], f"FLOP count of {method} at {cut_length}")["flops_per_step"]
    return library.compare(method, args.spec, args.image_size, args.buckets, cut_length, ours, theirs, our_flops)


@refusing
def main(argv):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mindclip_side_by_side_") as folder:
        rows = [emit(row(method, args, folder), args.json) for method in args.methods]
    print(library.markdown_table(rows, args.steps, args.warmup))
    return rows
