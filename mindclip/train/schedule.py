"""Learning-rate schedule, precomputed per optimizer step on the host (mindcv style)."""
import math

import numpy as np


def warmup_cosine_lr(peak_lr, total_steps, warmup_steps, min_lr=0.0):
    """Linear warm-up from ~0 to `peak_lr` over `warmup_steps`, then cosine down to `min_lr`.

    Returns a float32 array of `total_steps` values; step s uses `lr[s]`.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    steps = np.arange(total_steps, dtype=np.float64)
    lr = np.empty(total_steps, dtype=np.float64)
    warm = steps < warmup_steps
    lr[warm] = peak_lr * (steps[warm] + 1) / max(1, warmup_steps)
    decay_steps = max(1, total_steps - warmup_steps)
    t = (steps[~warm] - warmup_steps) / decay_steps
    lr[~warm] = min_lr + 0.5 * (peak_lr - min_lr) * (1 + np.cos(math.pi * t))
    return lr.astype(np.float32)
