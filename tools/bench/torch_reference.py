"""The PyTorch side: the same model and train step in open_clip (mindclip/bench/torch_model.py).

    /work/refvenv/bin/python -m tools.bench torch_reference --method lightclip --batch 32 --flops
    /work/refvenv/bin/python -m tools.bench torch_reference --method clip --pieces all --steps 3

Runs under a PyTorch interpreter (torch, open_clip_torch, timm, pillow, scipy) from the repository
root, importing only mindclip's NumPy parts. The step is open_clip's: forward, loss (clip:
`open_clip.loss.ClipLoss`; lightclip: the port of mindclip's objective at progress 0.7), backward,
AdamW (lr 1e-4, betas 0.9/0.98, eps 1e-6, decay 0.1 on >= 2-D tensors), logit_scale clamped to
ln(100); eager fp32. Batch: `mindclip.data.synthetic` or `--batch-npz`. `--flops` counts one step
(forward + backward, on a copy, untimed) with `FlopCounterMode`: matrix products, convolutions
(groups-aware) and attention, not element-wise ops. `--pieces`: harness.STEP_PIECES as `train` defines
them. Measured by `mindclip.bench.torch_reference`.
"""
import sys

from mindclip.bench.harness import emit
from tools.bench._cli import batch_spec, bench_parser, fail, refusing


def parse_args(argv):
    p = bench_parser("torch_reference", __doc__, ["method", "batch", "batch_npz", "image_size", "text_length",
                                                  "lengths", "steps", "warmup", "pieces", "json", "seed"],
                     image_size=224)
    p.add_argument("--flops", action="store_true", help="also count the FLOPs of one step")
    p.add_argument("--flops-only", action="store_true", help="count the FLOPs of one step; no timing")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = p.parse_args(argv)
    if args.method not in ("clip", "lightclip"):
        fail(f"--method {args.method}: the PyTorch reference has clip and lightclip")
    args.spec = batch_spec(args, argv, ("--batch", "--image-size", "--text-length", "--lengths", "--seed"))
    return args


@refusing
def main(argv):
    args = parse_args(argv)
    try:
        from mindclip.bench.torch_reference import torch_reference_bench
    except ImportError as error:
        fail(f"{sys.executable} cannot import {error.name}: the PyTorch side needs torch, open_clip_torch, timm, "
             f"pillow and scipy")
    return emit(torch_reference_bench(args.method, args.spec, args.image_size, args.steps, args.warmup, args.flops,
                                      args.flops_only, args.threads, args.pieces), args.json)
