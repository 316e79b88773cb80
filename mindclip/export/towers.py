"""Inference-only towers: what is exported, and nothing of the pre-training parts.

The exported cells are `mindclip.models.ImageEncoder` / `TextEncoder`: the model's own inference
contract, L2-normalised in float32, so an exported file maps its input straight to unit embeddings.
A graph is traced from `construct` only, so the parameters that reach a MINDIR file are exactly
those the tower uses: the fusion module, MLM heads, token projections and ROI path never do.
"""
import copy

import mindspore as ms
from mindspore import nn

from mindclip.models.clip import ImageEncoder, TextEncoder  # noqa: F401  (the exported cells)

# Cells kept in float32 when a tower is cast to float16 (statistics and variance need the range).
_FP32_CELL_TYPES = (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.Softmax)


def _is_fp32_cell(cell):
    """Normalisation layers (ours or MindSpore's) stay float32 in a float16 tower."""
    return isinstance(cell, _FP32_CELL_TYPES) or "Norm" in type(cell).__name__


def float16_copy(model):
    """A deep copy of `model` computing in float16, with normalisation layers kept in float32.

    Every cell casts its inputs to float16 (`Cell.to_float`) and the weights of every other cell are
    stored as float16, halving the exported files; LayerNorm/BatchNorm cells (and their
    parameters) stay float32. The given model is left untouched.
    """
    half = copy.deepcopy(model)
    half.set_train(False)
    half.to_float(ms.float16)
    fp32_params = set()
    for _, cell in half.cells_and_names():
        if _is_fp32_cell(cell):
            cell.to_float(ms.float32)
            fp32_params.update(id(p) for p in cell.get_parameters())
    for param in half.get_parameters():
        if id(param) not in fp32_params and param.dtype == ms.float32:
            param.set_dtype(ms.float16)
    return half
