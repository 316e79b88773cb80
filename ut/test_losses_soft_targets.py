"""soft_targets / smoothed_targets against a NumPy re-computation of DESIGN.md's three regimes."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

from mindclip.losses import smoothed_targets, soft_cross_entropy, soft_targets


def reference_targets(logits, progress, r1, r2, delta, offset):
    n_rows, n_cols = logits.shape
    positive = np.zeros((n_rows, n_cols), dtype=bool)
    positive[np.arange(n_rows), np.arange(n_rows) + offset] = True
    if progress < r1:
        return positive.astype(np.float64)
    if progress < r2:
        return np.where(positive, 1 - delta, delta / (n_cols - 1))
    negative = np.where(positive, -np.inf, logits.astype(np.float64))
    weights = np.exp(negative - negative.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    return np.where(positive, 1 - delta, delta * weights)


class TargetsCell(nn.Cell):
    """soft_targets inside a compiled graph, with progress as a Tensor input."""

    def __init__(self, offset):
        super().__init__()
        self.offset = offset

    def construct(self, logits, progress):
        return soft_targets(logits, progress, 0.33, 0.66, 0.2, self.offset)


class TargetGradCell(nn.Cell):
    def construct(self, logits, progress):
        return soft_cross_entropy(logits, soft_targets(logits, progress))


LOGITS = np.random.default_rng(0).normal(size=(4, 12)).astype(np.float32) * 5


@pytest.mark.parametrize("progress", [0.0, 0.2, 0.33, 0.5, 0.65, 0.66, 0.9, 1.0])
@pytest.mark.parametrize("offset", [0, 4, 8])
def test_eager_matches_reference(progress, offset):
    got = soft_targets(ms.Tensor(LOGITS), progress, offset=offset).asnumpy()
    want = reference_targets(LOGITS, progress, 0.33, 0.66, 0.2, offset)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)


def test_one_graph_serves_every_regime():
    cell = TargetsCell(offset=4)
    for progress in (0.1, 0.5, 0.8):
        got = cell(ms.Tensor(LOGITS), ms.Tensor(progress, ms.float32)).asnumpy()
        np.testing.assert_allclose(got, reference_targets(LOGITS, progress, 0.33, 0.66, 0.2, 4),
                                   rtol=1e-5, atol=1e-7)


def test_importance_weights_follow_similarity():
    got = soft_targets(ms.Tensor(LOGITS), 0.9).asnumpy()
    for i in range(LOGITS.shape[0]):
        negatives = [j for j in range(LOGITS.shape[1]) if j != i]
        order_by_logit = np.argsort(LOGITS[i, negatives])
        assert np.all(np.diff(got[i, negatives][order_by_logit]) > 0)


def test_smoothed_targets_ignore_progress():
    got = smoothed_targets(ms.Tensor(LOGITS), alpha=0.2, offset=8).asnumpy()
    np.testing.assert_allclose(got, reference_targets(LOGITS, 0.5, 0.0, 2.0, 0.2, 8), rtol=1e-6)


def test_single_column_is_one_hot():
    got = soft_targets(ms.Tensor(np.zeros((1, 1), np.float32)), 0.9).asnumpy()
    np.testing.assert_array_equal(got, [[1.0]])


def test_no_gradient_through_targets():
    """d/dlogits of CE(logits, targets) with detached targets is (softmax - targets) / n_rows."""
    progress = ms.Tensor(0.9, ms.float32)
    grad = ms.grad(TargetGradCell())(ms.Tensor(LOGITS), progress).asnumpy()
    probs = np.exp(LOGITS - LOGITS.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    want = (probs - reference_targets(LOGITS, 0.9, 0.33, 0.66, 0.2, 0)) / LOGITS.shape[0]
    np.testing.assert_allclose(grad, want, rtol=1e-4, atol=1e-6)
