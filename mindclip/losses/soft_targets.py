"""Target distributions for contrastive cross-entropy: one-hot, label smoothing, importance-aware.

LightCLIP's progressive softened labels (DESIGN.md, "LightCLIP objective"), for training progress
p = step / total_steps:

- p < r1:       one-hot on the positive;
- r1 <= p < r2: label smoothing, 1-delta on the positive, delta/(n_cols-1) on every negative;
- p >= r2:      importance-aware, 1-delta on the positive and delta * softmax over the row's
                detached negative logits (the positive's logit set to -inf first).

The regime is chosen with `ops.select` on tensors, never with Python branching on the value of
`progress`, so a jitted train step that takes `progress` as a Tensor input never recompiles.
CLIP is r1 = r2 = inf (always one-hot); PyramidCLIP's constant smoothing is r1 = 0, r2 = inf
(`smoothed_targets`). Targets never carry a gradient.
"""
import mindspore as ms
from mindspore import ops

ALWAYS = float("inf")  # a threshold that progress never reaches


def positive_mask(n_rows, n_cols, offset=0):
    """(n_rows, n_cols) bool Tensor, True at (i, i + offset): the positive pair of each row."""
    rows = ops.arange(n_rows, dtype=ms.int32).reshape(n_rows, 1) + offset
    cols = ops.arange(n_cols, dtype=ms.int32).reshape(1, n_cols)
    return ops.equal(rows, cols)


def soft_targets(logits, progress, r1=0.33, r2=0.66, delta=0.2, offset=0):
    """Soft target rows for `logits` (n_rows, n_cols); the positive of row i is column i + offset.

    Args:
        logits: (n_rows, n_cols) Tensor of one direction (read detached, in fp32).
        progress: training progress in [0, 1], a Python float or a scalar Tensor.
        r1, r2: progress thresholds where smoothing, then importance-aware targets, start.
        delta: mass moved from the positive to the negatives.
        offset: column of row 0's positive (rank * local_batch for a local loss).

    Returns:
        (n_rows, n_cols) float32 Tensor, rows summing to 1, with no gradient.
    """
    n_rows, n_cols = logits.shape
    positive = positive_mask(n_rows, n_cols, offset)
    one_hot = positive.astype(ms.float32)
    if n_cols == 1:  # a single column: every regime puts all mass on the positive
        return one_hot
    logits = ops.stop_gradient(logits.astype(ms.float32))
    smooth = one_hot * (1.0 - delta) + (1.0 - one_hot) * (delta / (n_cols - 1))
    negative_logits = ops.select(positive, ops.full_like(logits, -float("inf")), logits)
    importance = one_hot * (1.0 - delta) + delta * ops.softmax(negative_logits, axis=-1)
    progress = ops.zeros((), ms.float32) + progress  # Python float or Tensor -> fp32 scalar Tensor
    targets = ops.select(ops.broadcast_to(progress < r2, (n_rows, n_cols)), smooth, importance)
    targets = ops.select(ops.broadcast_to(progress < r1, (n_rows, n_cols)), one_hot, targets)
    return ops.stop_gradient(targets)


def smoothed_targets(logits, alpha=0.2, offset=0):
    """Constant label smoothing (PyramidCLIP): 1-alpha on the positive, alpha/(n_cols-1) elsewhere."""
    return soft_targets(logits, 0.0, r1=0.0, r2=ALWAYS, delta=alpha, offset=offset)


def soft_cross_entropy(logits, targets):
    """Mean over rows of -sum_j targets_ij * log_softmax(logits)_ij, in fp32 (scalar Tensor)."""
    log_probs = ops.log_softmax(logits.astype(ms.float32), axis=-1)
    return -(targets * log_probs).sum(axis=-1).mean()
