"""harness.STEP_PIECES on the PyTorch reference, defined as tools/bench/pieces.py defines them for mindclip:
forward + backward (gradients set to None first) unless said otherwise, fixed inputs from `default_rng(1)`."""
import functools

import numpy as np
import torch

from tools.bench import lightclip_torch as lc
from tools.bench.harness import PROGRESS, parse_pieces, time_calls
from tools.bench.torch_model import image_stages


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


def without_table_grad(clip, tokens):
    """The text tower with the token table frozen (autograd skips the table's gradient)."""
    clip.token_embedding.weight.requires_grad_(False)
    try:
        return weighted_sum(clip.encode_text(tokens, normalize=False))
    finally:
        clip.token_embedding.weight.requires_grad_(True)


def loss_setups(args, net, clip, batch, rng):
    """inst_loss (the method's contrastive loss on unit features), token_loss, mlm_branch (image stages fixed)."""
    embed, tokens, scale = clip.text_projection.shape[1], batch["tokens"], clip.logit_scale.detach().exp()
    features = [leaves(rng, args.batch, embed, unit=True) for _ in range(2)]
    token_inputs = [leaves(rng, args.batch, (args.image_size // 32) ** 2, embed), leaves(rng, *tokens.shape, embed)]
    if args.method == "lightclip":
        inst = functools.partial(lc.instance_loss, *features, scale, PROGRESS)
    else:
        from open_clip.loss import ClipLoss  # loaded by torchvision_stub.import_open_clip

        inst = functools.partial(ClipLoss(), *features, scale)

    def mlm_branch():
        with torch.no_grad():
            stages = image_stages(clip.visual, batch["image"])
        logits = lambda: net.mlm_logits(stages, batch["mlm_tokens"], batch["mlm_positions"])  # noqa: E731
        return backward(lambda: sum(lc.mlm_loss(x, batch["mlm_labels"]) for x in logits()), list(net.parameters()))

    return {"inst_loss": lambda: backward(inst, features), "mlm_branch": mlm_branch,
            "token_loss": lambda: backward(lambda: lc.token_alignment_loss(*token_inputs, lc.text_word_mask(tokens)),
                                           token_inputs)}


def optimizer_step(optimizer, rng):
    """AdamW.step() alone, on fixed random gradients (x 1e-3) set once."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad = torch.tensor(rng.standard_normal(tuple(p.shape)) * 1e-3, dtype=p.dtype)
    return optimizer.step


def time_pieces(args, net, clip, optimizer, batch):
    """{name: {step_s}} for `--pieces` (eager: nothing to compile)."""
    available = ["image_tower", "text_tower", "token_table", "text_no_table", "inst_loss", "optimizer"]
    names = parse_pieces(args.pieces, available + (["token_loss", "mlm_branch"] if args.method == "lightclip" else []))
    rng, params, images, tokens = np.random.default_rng(1), list(net.parameters()), batch["image"], batch["tokens"]
    setups = {"image_tower": lambda: backward(lambda: weighted_sum(clip.visual(images)), params),
              "text_tower": lambda: backward(lambda: weighted_sum(clip.encode_text(tokens, normalize=False)), params),
              "token_table": lambda: backward(lambda: weighted_sum(clip.token_embedding(tokens)), params),
              "text_no_table": lambda: backward(lambda: without_table_grad(clip, tokens), params),
              "optimizer": lambda: optimizer_step(optimizer, rng), **loss_setups(args, net, clip, batch, rng)}
    rows = {}
    for name in names:
        rows[name] = {"step_s": round(time_calls(setups[name](), args.steps, args.warmup, sync=lambda o: o).median_s, 4)}
        print(f"{name:14s} {rows[name]['step_s']:8.3f} s", flush=True)
    return rows
