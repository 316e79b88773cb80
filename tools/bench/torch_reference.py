"""The PyTorch side: the same model and train step in open_clip (tools/bench/torch_model.py).

    /work/refvenv/bin/python -m tools.bench torch_reference --method lightclip --batch 32 --flops
    /work/refvenv/bin/python -m tools.bench torch_reference --method clip --pieces all --steps 3

Runs under a PyTorch interpreter (torch, open_clip_torch, timm, pillow, scipy) from the repository
root, importing only mindclip's NumPy parts. The step is open_clip's: forward, loss (clip:
`open_clip.loss.ClipLoss`; lightclip: the port of mindclip's objective at progress 0.7), backward,
AdamW (lr 1e-4, betas 0.9/0.98, eps 1e-6, decay 0.1 on >= 2-D tensors), logit_scale clamped to
ln(100); eager fp32. Batch: `mindclip.data.synthetic` or `--batch-npz`. `--flops` counts one step
(forward + backward, on a copy, untimed) with `FlopCounterMode`: matrix products, convolutions
(groups-aware) and attention, not element-wise ops. `--pieces`: harness.STEP_PIECES as `train` defines them.
"""
import copy
import math
import sys

import numpy as np

from mindclip.data import BATCH_COLUMNS
from mindclip.data.synthetic import synthetic_arrays
from tools.bench.harness import PROGRESS, STEP_PIECES, bench_parser, emit, fail, load_npz_batch, time_calls

try:
    import scipy.optimize  # noqa: F401  (the token loss's host Hungarian)
    import torch
    from torch.utils import flop_counter

    from tools.bench.torchvision_stub import import_open_clip

    OPEN_CLIP = import_open_clip()  # before timm, which imports torchvision too
    import timm

    from tools.bench.torch_model import BENCH_ARCH, build_network
except ImportError as error:
    fail(f"{sys.executable} cannot import {error.name}: the PyTorch side needs torch, open_clip_torch, timm, "
         f"pillow and scipy")


def parse_args(argv):
    p = bench_parser("torch_reference", __doc__, ["method", "batch", "image_size", "text_length", "lengths",
                                                  "steps", "warmup", "json", "seed"], image_size=224)
    p.add_argument("--batch-npz", default=None, help="take the batch from this .npz (the method's columns): "
                   "it sets batch size, image size and text length")
    p.add_argument("--flops", action="store_true", help="also count the FLOPs of one step")
    p.add_argument("--flops-only", action="store_true", help="count the FLOPs of one step; no timing")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--pieces", default=None, help="also time pieces of the step: all, or some of "
                   + ", ".join(STEP_PIECES))
    args = p.parse_args(argv)
    if args.method not in ("clip", "lightclip"):
        fail(f"--method {args.method}: the PyTorch reference has clip and lightclip")
    given = {a.split("=")[0] for a in argv} & {"--batch", "--image-size", "--text-length", "--lengths", "--seed"}
    if args.batch_npz and given:
        fail(f"--batch-npz holds the batch: {', '.join(sorted(given))} would be ignored")
    return args


def load_batch(args):
    """{column: tensor} (images float32, ids int64) from --batch-npz or the synthetic recipe."""
    if args.batch_npz:
        columns = BATCH_COLUMNS[args.method]
        arrays = dict(zip(columns, load_npz_batch(args.batch_npz, columns)))
        args.batch, args.text_length = arrays["tokens"].shape
        args.image_size = arrays["image"].shape[-1]
    else:
        arrays = synthetic_arrays(args.method, args.image_size, args.batch, args.text_length,
                                  np.random.default_rng(args.seed), args.lengths)
    return {name: torch.from_numpy(np.ascontiguousarray(a)).to(torch.float32 if name == "image" else torch.int64)
            for name, a in arrays.items()}


def build_optimizer(net):
    """open_clip's AdamW: weight decay 0.1 on >= 2-D tensors only (not biases, norms, logit_scale)."""
    params = [p for p in net.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.98), eps=1e-6)


def train_step(net, clip, objective, optimizer, batch):
    """zero_grad, forward, loss, backward, AdamW, clamp logit_scale (open_clip's train loop)."""
    optimizer.zero_grad(set_to_none=True)
    total, parts = objective(net, batch, PROGRESS)
    total.backward()
    optimizer.step()
    with torch.no_grad():
        clip.logit_scale.clamp_(0, math.log(100.0))
    return float(total.detach()), {name: float(value.detach()) for name, value in parts.items()}


def flop_formulas():
    """FlopCounterMode fixes: torch counts a grouped conv's grad_weight without its groups (MobileNet-V2's
    depthwise backward ~10x too high), and has no formula for the CPU flash-attention kernels (counted as
    its other SDPA kernels: the full L x S scores, as mindclip computes them)."""
    def conv_backward(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                      _output_padding, _groups, output_mask, out_shape=None):
        forward = flop_counter.conv_flop_count(x_shape, w_shape, grad_out_shape, transposed=transposed)
        return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))  # w_shape[1] = C_in / groups

    def raw(formula):  # flop_counter's module-level formulas already take shapes
        def counted(*args, **kwargs):
            return formula(*args, **kwargs)
        counted._get_raw = True
        return counted

    aten = torch.ops.aten
    return {aten.convolution_backward: conv_backward,
            aten._scaled_dot_product_flash_attention_for_cpu: raw(flop_counter.sdpa_flop),
            aten._scaled_dot_product_flash_attention_for_cpu_backward: raw(flop_counter.sdpa_backward_flop)}


def count_step_flops(net, objective, batch):
    probe = copy.deepcopy(net)  # the timed net keeps no gradients
    with flop_counter.FlopCounterMode(display=False, custom_mapping=flop_formulas()) as counter:
        objective(probe, batch, PROGRESS)[0].backward()
    return int(counter.get_total_flops())


def run(args):
    oc = OPEN_CLIP
    if args.threads:
        torch.set_num_threads(args.threads)
    batch = load_batch(args)
    net, clip, objective = build_network(oc, args.method, BENCH_ARCH._replace(
        context_length=args.text_length, image_size=args.image_size))
    net.train()
    result = {"framework": "open_clip", "method": args.method, "batch": args.batch, "image_size": args.image_size,
              "text_length": args.text_length, "threads": torch.get_num_threads(),
              "params": sum(p.numel() for p in net.parameters() if p.requires_grad),
              "batch_source": args.batch_npz or f"synthetic ({args.lengths}, seed {args.seed})",
              "torch": torch.__version__, "open_clip": oc.__version__, "timm": timm.__version__}
    if args.flops or args.flops_only:
        result["flops_per_step"] = count_step_flops(net, objective, batch)
    if args.flops_only:
        return result
    optimizer, outputs = build_optimizer(net), []
    timing = time_calls(lambda: outputs.append(train_step(net, clip, objective, optimizer, batch)),
                        args.steps, args.warmup, sync=lambda out: out)
    result.update(first_step_s=round(timing.first_s, 2), step_s_median=round(timing.median_s, 4),
                  step_s_min=round(timing.min_s, 4), images_per_s=round(args.batch / timing.median_s, 2),
                  loss=round(outputs[-1][0], 5), parts={k: round(v, 5) for k, v in outputs[-1][1].items()})
    if "flops_per_step" in result:
        result["gflops_per_s"] = round(result["flops_per_step"] / timing.median_s / 1e9, 2)
    if args.pieces:
        from tools.bench.torch_pieces import time_pieces

        result["pieces"] = time_pieces(args, net, clip, optimizer, batch)
    return result


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    return emit(run(args), args.json)
