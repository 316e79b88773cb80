"""Custom operators: the host-side Hungarian matcher and an all-gather whose backward runs on CPU.

Names load on first use: `match_tokens` (matching.py) needs only NumPy and SciPy, so that the PyTorch
side of the benchmarks imports it without MindSpore.
"""
import importlib

_LAZY = {"AllGatherWithGrad": "all_gather", "world_info": "all_gather", "HUNGARIAN_MATCH": "hungarian",
         "hungarian_match": "hungarian", "match_tokens": "matching"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"mindclip.ops.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mindclip.ops' has no attribute {name!r}")


__all__ = list(_LAZY)
