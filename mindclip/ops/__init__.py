"""Custom operators: the host-side Hungarian matcher and an all-gather whose backward runs on CPU."""
from mindclip.ops.all_gather import AllGatherWithGrad, world_info
from mindclip.ops.hungarian import HUNGARIAN_MATCH, hungarian_match, match_tokens

__all__ = ["AllGatherWithGrad", "world_info", "HUNGARIAN_MATCH", "hungarian_match", "match_tokens"]
