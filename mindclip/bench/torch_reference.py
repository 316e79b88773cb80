"""The PyTorch side of the train-step benchmark (PyTorch only): the same model and step in open_clip.

The step is open_clip's: forward, loss (clip: `open_clip.loss.ClipLoss`; lightclip: the port of
mindclip's objective at progress 0.7, lightclip_torch.py), backward, AdamW (lr 1e-4, betas 0.9/0.98,
eps 1e-6, decay 0.1 on >= 2-D tensors), logit_scale clamped to ln(100); eager fp32, on the network
of torch_model.py. `count_step_flops` counts one step (forward + backward, on a copy, untimed) with
`FlopCounterMode`: matrix products, convolutions (groups-aware) and attention, not element-wise ops.
Importing this module imports open_clip (without torchvision if need be: torchvision_stub), then timm.
"""
import copy
import math

import numpy as np
import scipy.optimize  # noqa: F401  (the token loss's host Hungarian)
import torch
from torch.utils import flop_counter

from mindclip.bench.harness import PROGRESS, time_calls
from mindclip.bench.torchvision_stub import import_open_clip

OPEN_CLIP = import_open_clip()  # before timm, which imports torchvision too
import timm  # noqa: E402

from mindclip.bench.torch_model import BENCH_ARCH, build_network  # noqa: E402


def load_batch(method, spec, image_size):
    """({column: tensor} (images float32, ids int64), the spec, the image size) from spec.npz (which sets
    all three) or the synthetic recipe."""
    if spec.npz:
        arrays, spec = spec.from_npz(method)
        image_size = arrays["image"].shape[-1]
    else:
        arrays = spec.synthetic(method, image_size)
    tensors = {name: torch.from_numpy(np.ascontiguousarray(a)).to(torch.float32 if name == "image" else torch.int64)
               for name, a in arrays.items()}
    return tensors, spec, int(image_size)


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


def torch_reference_bench(method, spec, image_size=224, steps=5, warmup=2, flops=False, flops_only=False,
                          threads=None, pieces=None):
    """The result dict of open_clip's step on the spec's batch: timing (unless `flops_only`), FLOPs per
    step (with `flops`), and `pieces` ("all" or names of STEP_PIECES: torch_pieces)."""
    if threads:
        torch.set_num_threads(threads)
    batch, spec, image_size = load_batch(method, spec, image_size)
    net, clip, objective = build_network(OPEN_CLIP, method, BENCH_ARCH._replace(
        context_length=spec.text_length, image_size=image_size))
    net.train()
    result = {"framework": "open_clip", "method": method, "batch": spec.batch, "image_size": image_size,
              "text_length": spec.text_length, "threads": torch.get_num_threads(),
              "params": sum(p.numel() for p in net.parameters() if p.requires_grad),
              "batch_source": spec.npz or f"synthetic ({spec.lengths}, seed {spec.seed})",
              "torch": torch.__version__, "open_clip": OPEN_CLIP.__version__, "timm": timm.__version__}
    if flops or flops_only:
        result["flops_per_step"] = count_step_flops(net, objective, batch)
    if flops_only:
        return result
    optimizer, outputs = build_optimizer(net), []
    timing = time_calls(lambda: outputs.append(train_step(net, clip, objective, optimizer, batch)),
                        steps, warmup, sync=lambda out: out)
    result.update(first_step_s=round(timing.first_s, 2), step_s_median=round(timing.median_s, 4),
                  step_s_min=round(timing.min_s, 4), images_per_s=round(spec.batch / timing.median_s, 2),
                  loss=round(outputs[-1][0], 5), parts={k: round(v, 5) for k, v in outputs[-1][1].items()})
    if "flops_per_step" in result:
        result["gflops_per_s"] = round(result["flops_per_step"] / timing.median_s / 1e9, 2)
    if pieces:
        from mindclip.bench.torch_pieces import time_pieces

        result["pieces"] = time_pieces(OPEN_CLIP, method, pieces, net, clip, optimizer, batch, steps, warmup)
    return result
