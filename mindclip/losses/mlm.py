"""Masked language modelling loss over the chosen positions (LightCLIP's L_mlm parts)."""
import mindspore as ms
from mindspore import ops

IGNORE_INDEX = -100


def mlm_loss_sums(logits, labels):
    """(sum, count): summed cross-entropy over the positions whose label is not IGNORE_INDEX, and their number.

    `mlm_loss` is sum / max(count, 1); the pair averages a split batch exactly as the whole one.
    Shapes as `mlm_loss`.
    """
    log_probs = ops.log_softmax(logits.astype(ms.float32), axis=-1)  # (B, K, V)
    labels = labels.astype(ms.int32)
    valid = labels != IGNORE_INDEX  # (B, K)
    safe_labels = ops.select(valid, labels, ops.zeros_like(labels))
    picked = ops.gather_elements(log_probs, 2, safe_labels.expand_dims(-1)).squeeze(-1)  # (B, K)
    weights = valid.astype(ms.float32)
    return -(picked * weights).sum(), weights.sum()


def mlm_loss(logits, labels):
    """Mean cross-entropy over positions whose label is not IGNORE_INDEX (-100).

    Args:
        logits: (B, K, V) scores at the K chosen positions (any float dtype; computed in fp32).
        labels: (B, K) int32 target ids, -100 where a position carries no prediction.

    Returns:
        Scalar fp32 Tensor; 0 (not NaN) when every label is ignored.
    """
    total, count = mlm_loss_sums(logits, labels)
    return total / ops.maximum(count, 1.0)
