"""mlm_loss against a NumPy cross-entropy over the non-ignored positions."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

from mindclip.losses import IGNORE_INDEX, mlm_loss


def reference_mlm(logits, labels):
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    keep = labels != IGNORE_INDEX
    if not keep.any():
        return 0.0, np.zeros_like(logits)
    picked = np.take_along_axis(log_probs, np.where(keep, labels, 0)[..., None], -1)[..., 0]
    loss = -(picked * keep).sum() / keep.sum()
    one_hot = np.eye(logits.shape[-1])[np.where(keep, labels, 0)]
    grad = (np.exp(log_probs) - one_hot) * keep[..., None] / keep.sum()
    return loss, grad


class LossAndGrad(nn.Cell):
    def __init__(self):
        super().__init__()
        self.grad = ms.value_and_grad(mlm_loss)

    def construct(self, logits, labels):
        return self.grad(logits, labels)


@pytest.fixture(scope="module")
def loss_and_grad():
    return LossAndGrad()


LABELS = np.array([[5, -100, 0, 17], [-100, -100, 3, -100], [-100, -100, -100, -100]], np.int32)


def test_value_and_gradient(loss_and_grad):
    logits = (np.random.default_rng(0).normal(size=(3, 4, 19)) * 4).astype(np.float32)
    loss, grad = loss_and_grad(ms.Tensor(logits), ms.Tensor(LABELS))
    want_loss, want_grad = reference_mlm(logits, LABELS)
    np.testing.assert_allclose(loss.asnumpy(), want_loss, rtol=1e-5)
    np.testing.assert_allclose(grad.asnumpy(), want_grad, rtol=1e-4, atol=1e-7)
    assert not np.any(grad.asnumpy()[LABELS == IGNORE_INDEX])


def test_all_ignored_is_zero(loss_and_grad):
    logits = np.random.default_rng(1).normal(size=(3, 4, 19)).astype(np.float32)
    loss, grad = loss_and_grad(ms.Tensor(logits), ms.Tensor(np.full((3, 4), IGNORE_INDEX, np.int32)))
    assert loss.asnumpy() == 0.0 and not np.any(grad.asnumpy())


def test_half_logits_give_fp32_loss():
    logits = (np.random.default_rng(2).normal(size=(3, 4, 19)) * 4).astype(np.float16)
    loss = mlm_loss(ms.Tensor(logits), ms.Tensor(LABELS))
    assert loss.dtype == ms.float32
    np.testing.assert_allclose(loss.asnumpy(), reference_mlm(logits.astype(np.float32), LABELS)[0], rtol=1e-5)
