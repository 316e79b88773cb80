"""The float16 copy of a model that `export_model(..., fp16=True)` exports."""
import copy

import mindspore as ms
from mindspore import nn

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
