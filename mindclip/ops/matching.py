"""The host-side Hungarian matcher of the token loss: NumPy and SciPy only (no MindSpore), so that the
PyTorch reference of the benchmarks (mindclip/bench/lightclip_torch.py) runs this same matcher.
`mindclip.ops.hungarian` wraps it as a graph op; its module docstring states the output contract."""
import numpy as np
from scipy.optimize import linear_sum_assignment


def match_tokens(cost, text_valid):
    """Minimum-cost one-to-one matching of image tokens to valid text tokens, per sample (NumPy).

    Args:
        cost: (B, L1, L2) array, cost of pairing image token i with text token j.
        text_valid: (B, L2) array, non-zero where text token j may be matched.

    Returns:
        (image_index (B, L2) int32, matched (B, L2) float32), as described in mindclip/ops/hungarian.py.
    """
    cost = np.asarray(cost, dtype=np.float32)
    text_valid = np.asarray(text_valid)
    if cost.ndim != 3 or text_valid.shape != (cost.shape[0], cost.shape[2]):
        raise ValueError(f"match_tokens: cost must be (B, L1, L2) and text_valid (B, L2), got "
                         f"{cost.shape} and {text_valid.shape}")
    batch, _, text_len = cost.shape
    image_index = np.zeros((batch, text_len), dtype=np.int32)
    matched = np.zeros((batch, text_len), dtype=np.float32)
    for b in range(batch):
        columns = np.flatnonzero(text_valid[b])  # valid text positions
        if columns.size == 0:
            continue
        rows, picked = linear_sum_assignment(cost[b][:, columns])  # rectangular: min(L1, n) pairs
        image_index[b, columns[picked]] = rows
        matched[b, columns[picked]] = 1.0
    return image_index, matched
