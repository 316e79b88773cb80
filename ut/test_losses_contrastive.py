"""ClipLoss / InstanceLoss against a NumPy re-computation (values and analytic gradients)."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

from mindclip.losses import ClipLoss, InstanceLoss, contrastive_logits
from mindclip.losses.contrastive import symmetric_soft_loss
from test_losses_soft_targets import reference_targets

R1, R2, DELTA = 0.33, 0.66, 0.2


def unit_rows(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def log_softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def reference_loss_and_grads(image, text, scale, progress, r1=R1, r2=R2, delta=DELTA):
    """Global symmetric soft cross-entropy and its gradient w.r.t. image, text and scale."""
    image, text = image.astype(np.float64), text.astype(np.float64)
    sims = image @ text.T
    logits = scale * sims
    n = logits.shape[0]
    targets_i = reference_targets(logits, progress, r1, r2, delta, 0)
    targets_t = reference_targets(logits.T, progress, r1, r2, delta, 0)
    logp_i, logp_t = log_softmax(logits), log_softmax(logits.T)
    loss = (-(targets_i * logp_i).sum(1).mean() - (targets_t * logp_t).sum(1).mean()) / 2
    d_logits = ((np.exp(logp_i) - targets_i) / n + ((np.exp(logp_t) - targets_t) / n).T) / 2
    return loss, scale * d_logits @ text, scale * d_logits.T @ image, (d_logits * sims).sum()


class LossGrad(nn.Cell):
    """Loss value and gradients w.r.t. (image, text, scale) in one compiled graph."""

    def __init__(self, loss):
        super().__init__()
        self.loss = loss
        self.grad = ms.value_and_grad(self.loss, grad_position=(0, 1, 2))

    def construct(self, image, text, scale, progress):
        return self.grad(image, text, scale, progress)


RNG = np.random.default_rng(1)
IMAGE = unit_rows(RNG.normal(size=(8, 16))).astype(np.float32)
TEXT = unit_rows(IMAGE + 0.8 * RNG.normal(size=(8, 16))).astype(np.float32)
SCALE = np.float32(14.0)


@pytest.fixture(scope="module")
def instance_grad():
    return LossGrad(InstanceLoss(R1, R2, DELTA))


@pytest.fixture(scope="module")
def clip_grad():
    return LossGrad(ClipLoss())


def run(cell, progress):
    loss, grads = cell(ms.Tensor(IMAGE), ms.Tensor(TEXT), ms.Tensor(SCALE), ms.Tensor(progress, ms.float32))
    return loss.asnumpy(), [g.asnumpy() for g in grads]


@pytest.mark.parametrize("progress", [0.1, 0.5, 0.9])
def test_instance_loss_and_grads(instance_grad, progress):
    loss, grads = run(instance_grad, progress)
    want_loss, *want_grads = reference_loss_and_grads(IMAGE, TEXT, SCALE, progress)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("progress", [0.0, 0.9, 1.0])
def test_clip_loss_is_always_one_hot(clip_grad, progress):
    loss, grads = run(clip_grad, progress)
    want_loss, *want_grads = reference_loss_and_grads(IMAGE, TEXT, SCALE, 0.0)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_half_precision_inputs_are_computed_in_fp32():
    loss = InstanceLoss()(ms.Tensor(IMAGE, ms.float16), ms.Tensor(TEXT, ms.float16),
                          ms.Tensor(SCALE, ms.float16), 0.9)
    assert loss.dtype == ms.float32
    want, *_ = reference_loss_and_grads(IMAGE.astype(np.float16), TEXT.astype(np.float16), SCALE, 0.9)
    np.testing.assert_allclose(loss.asnumpy(), want, rtol=1e-5)


@pytest.mark.parametrize("progress", [0.1, 0.5, 0.9])
def test_local_losses_average_to_the_global_loss(progress):
    """Rank r's local rows x global columns (positives at r*B + i), averaged over ranks = global loss."""
    world, batch = 2, IMAGE.shape[0] // 2
    scale = ms.Tensor(SCALE)
    all_image, all_text = ms.Tensor(IMAGE), ms.Tensor(TEXT)
    local_losses = []
    for rank in range(world):
        rows = slice(rank * batch, (rank + 1) * batch)
        logits = contrastive_logits(ms.Tensor(IMAGE[rows]), ms.Tensor(TEXT[rows]), all_image, all_text,
                                    scale, local_loss=True)
        assert logits[0].shape == (batch, world * batch)
        local_losses.append(symmetric_soft_loss(*logits, progress, R1, R2, DELTA, rank * batch).asnumpy())
    want, *_ = reference_loss_and_grads(IMAGE, TEXT, SCALE, progress)
    np.testing.assert_allclose(np.mean(local_losses), want, rtol=1e-5)
