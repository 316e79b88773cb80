"""Activation recompute of a network's blocks (`Cell.recompute()`): one more forward of each block in
the backward pass instead of keeping its activations. Exact: the same ops run on the same inputs.

The units are the residual blocks of every tower (mindcv's, CLIP's ResNet and transformer blocks,
LeFF blocks, LightCLIP's fusion blocks) and the MLM heads; the layers between blocks (stems,
pooling, projections) keep their activations.
"""
from mindclip.models.backbones import mindcv_blocks
from mindclip.models.layers import CrossAttentionBlock, ResidualAttentionBlock
from mindclip.models.lightclip import MLMHead
from mindclip.models.modified_resnet import Bottleneck


def recompute_units():
    """The classes whose instances are recomputed."""
    return mindcv_blocks() + (ResidualAttentionBlock, CrossAttentionBlock, Bottleneck, MLMHead)


def recompute_blocks(cell, exclude=None):
    """Mark every recompute unit under `cell` (not under `exclude`, a sub-cell); return how many."""
    units = recompute_units()
    skipped = set()
    if exclude is not None:
        skipped = {id(sub) for _, sub in exclude.cells_and_names()}
    count = 0
    for _, sub in cell.cells_and_names():
        if isinstance(sub, units) and id(sub) not in skipped:
            sub.recompute()
            count += 1
    return count


def apply_recompute(network, clip, image=False, text=False):
    """Recompute the image tower's blocks and/or the text side's (the text tower, and with LightCLIP
    the masked pass, fusion blocks and MLM heads). `network` holds `clip`. Returns the count marked."""
    count = recompute_blocks(clip.visual) if image else 0
    if text:
        count += recompute_blocks(network, exclude=clip.visual)
    return count
