"""`harness.STEP_PIECES` on the PyTorch reference (PyTorch only), as pieces.py defines them for mindclip:
forward + backward (gradients set to None first) unless said otherwise, fixed inputs from `default_rng(1)`."""
import functools

import numpy as np
import torch

from mindclip.bench import lightclip_torch as lc
from mindclip.bench.harness import PROGRESS, select_pieces, time_calls
from mindclip.bench.torch_model import image_stages


def weighted_sum(out):
    """A scalar whose gradient reaches every element of `out` (fixed weights sin(arange))."""
    return (out * torch.sin(torch.arange(out.numel(), dtype=out.dtype)).reshape(out.shape)).sum()


def backward(loss_fn, leaves):
    def call():
        for leaf in leaves:
            leaf.grad = None
        loss_fn().backward()
    return call


def leaves(rng, *shape, unit=False):
    x = rng.standard_normal(shape)
    return torch.tensor(x / np.linalg.norm(x, axis=-1, keepdims=True) if unit else x, dtype=torch.float32,
                        requires_grad=True)


def text_no_table(clip, tokens):
    clip.token_embedding.weight.requires_grad_(False)  # autograd skips the table's gradient
    try:
        return weighted_sum(clip.encode_text(tokens, normalize=False))
    finally:
        clip.token_embedding.weight.requires_grad_(True)


def mlm_branch(net, clip, batch):
    """The image stages computed once and held fixed; the masked-text pass, fusion, both heads and losses."""
    with torch.no_grad():
        stages = image_stages(clip.visual, batch["image"])
    logits = functools.partial(net.mlm_logits, stages, batch["mlm_tokens"], batch["mlm_positions"])
    return backward(lambda: sum(lc.mlm_loss(x, batch["mlm_labels"]) for x in logits()), list(net.parameters()))


def setups(oc, method, net, clip, optimizer, batch):
    """name -> setup() -> the call to time; inputs drawn in the order of mindclip's pieces."""
    rng, params, images, tokens = np.random.default_rng(1), list(net.parameters()), batch["image"], batch["tokens"]
    embed, scale, rows = clip.text_projection.shape[1], clip.logit_scale.detach().exp(), tokens.shape[0]
    features = [leaves(rng, rows, embed, unit=True) for _ in range(2)]
    inst = (functools.partial(lc.instance_loss, *features, scale, PROGRESS) if method == "lightclip"
            else functools.partial(oc.loss.ClipLoss(), *features, scale))
    token_inputs = [leaves(rng, rows, (images.shape[-1] // 32) ** 2, embed), leaves(rng, *tokens.shape, embed)]
    token_loss = functools.partial(lc.token_alignment_loss, *token_inputs, lc.text_word_mask(tokens))

    def optimizer_step():  # AdamW.step() alone, fixed random gradients (x 1e-3) set once
        for p in params:
            p.grad = torch.tensor(rng.standard_normal(tuple(p.shape)) * 1e-3, dtype=p.dtype)
        return optimizer.step

    return {"image_tower": lambda: backward(lambda: weighted_sum(clip.visual(images)), params),
            "text_tower": lambda: backward(lambda: weighted_sum(clip.encode_text(tokens, normalize=False)), params),
            "token_table": lambda: backward(lambda: weighted_sum(clip.token_embedding(tokens)), params),
            "text_no_table": lambda: backward(lambda: text_no_table(clip, tokens), params),
            "inst_loss": lambda: backward(inst, features), "token_loss": lambda: backward(token_loss, token_inputs),
            "mlm_branch": lambda: mlm_branch(net, clip, batch), "optimizer": optimizer_step}


def time_pieces(oc, method, pieces, net, clip, optimizer, batch, steps, warmup):
    """{name: {step_s}} for `pieces` ("all" or names; eager: nothing to compile)."""
    lightclip_only = ["token_loss", "mlm_branch"] if method == "lightclip" else []
    names = select_pieces(pieces, ["image_tower", "text_tower", "token_table", "text_no_table", "inst_loss",
                                   "optimizer"] + lightclip_only)
    calls, rows = setups(oc, method, net, clip, optimizer, batch), {}
    for name in names:
        rows[name] = {"step_s": round(time_calls(calls[name](), steps, warmup, sync=lambda o: o).median_s, 4)}
        print(f"{name:14s} {rows[name]['step_s']:8.3f} s", flush=True)
    return rows
