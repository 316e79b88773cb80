"""token_alignment_loss: value and gradient against NumPy + SciPy; inside a jitted train step."""
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import mindspore as ms
from mindspore import nn

from mindclip.losses import text_word_mask, token_alignment_loss
from mindclip.tokenizer import EOT_ID, MASK_ID, SOT_ID



def reference_loss_and_grads(image, text, valid):
    """NumPy loss and analytic gradient of the mean matched (1 - cosine) cost."""
    image, text = image.astype(np.float64), text.astype(np.float64)
    image_norm = np.linalg.norm(image, axis=-1, keepdims=True)
    text_norm = np.linalg.norm(text, axis=-1, keepdims=True)
    image_unit, text_unit = image / image_norm, text / text_norm
    cost = 1.0 - image_unit @ text_unit.transpose(0, 2, 1)
    samples = [b for b in range(len(valid)) if valid[b].any()]
    loss, d_image, d_text = 0.0, np.zeros_like(image), np.zeros_like(text)
    for b in samples:
        columns = np.flatnonzero(valid[b])
        rows, picked = linear_sum_assignment(cost[b][:, columns])
        weight = 1.0 / (len(rows) * len(samples))
        for i, j in zip(rows, columns[picked]):
            cos = 1.0 - cost[b, i, j]
            loss += weight * cost[b, i, j]
            # d(-cos(a, t))/da = -(t_unit - cos * a_unit) / |a|
            d_image[b, i] -= weight * (text_unit[b, j] - cos * image_unit[b, i]) / image_norm[b, i]
            d_text[b, j] -= weight * (image_unit[b, i] - cos * text_unit[b, j]) / text_norm[b, j]
    return loss, d_image, d_text


class LossAndGrads(nn.Cell):
    def __init__(self):
        super().__init__()
        self.grad = ms.value_and_grad(token_alignment_loss, grad_position=(0, 1))

    def construct(self, image, text, valid):
        return self.grad(image, text, valid)


@pytest.fixture(scope="module")
def loss_and_grads():
    return LossAndGrads()


def word_mask(lengths, n_text):
    positions = np.arange(n_text)[None, :]
    return (positions >= 1) & (positions <= np.asarray(lengths)[:, None])


@pytest.mark.parametrize("n_image, n_text, lengths", [
    (3, 4, [2, 3, 0, 1]),            # tiny, one caption without words
    (2, 5, [4, 3, 1, 2]),            # more words than image tokens: some words stay unmatched
    (49, 77, [5, 20, 0, 75, 12, 1, 33, 9, 14, 2, 60, 7, 3, 18, 26, 40]),  # real sizes, 16 samples
])
def test_value_and_gradient(loss_and_grads, n_image, n_text, lengths):
    rng = np.random.default_rng(n_image * 100 + n_text)
    image = rng.normal(size=(len(lengths), n_image, 8)).astype(np.float32)
    text = rng.normal(size=(len(lengths), n_text, 8)).astype(np.float32)
    valid = word_mask(lengths, n_text)
    loss, (d_image, d_text) = loss_and_grads(ms.Tensor(image), ms.Tensor(text), ms.Tensor(valid))
    want_loss, want_d_image, want_d_text = reference_loss_and_grads(image, text, valid)
    np.testing.assert_allclose(loss.asnumpy(), want_loss, rtol=1e-5)
    np.testing.assert_allclose(d_image.asnumpy(), want_d_image, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d_text.asnumpy(), want_d_text, rtol=1e-4, atol=1e-6)
    # the gradient is non-zero exactly at matched tokens
    np.testing.assert_array_equal(np.abs(d_image.asnumpy()).sum(-1) > 0, np.abs(want_d_image).sum(-1) > 0)
    np.testing.assert_array_equal(np.abs(d_text.asnumpy()).sum(-1) > 0, np.abs(want_d_text).sum(-1) > 0)
    assert np.all(d_text.asnumpy()[~valid] == 0)
    matched_images = (np.abs(want_d_image).sum(-1) > 0).sum(-1)
    np.testing.assert_array_equal(matched_images, np.minimum(n_image, lengths))


def test_batch_without_words_is_zero(loss_and_grads):
    image = np.ones((2, 3, 4), np.float32)
    text = np.ones((2, 5, 4), np.float32)
    no_words = ms.Tensor(np.zeros((2, 5), bool))
    loss, (d_image, d_text) = loss_and_grads(ms.Tensor(image), ms.Tensor(text), no_words)
    assert loss.asnumpy() == 0.0
    assert not np.any(d_image.asnumpy()) and not np.any(d_text.asnumpy())


def test_text_word_mask():
    tokens = np.array([[SOT_ID, 320, 1125, EOT_ID, 0, 0], [SOT_ID, MASK_ID, 539, 320, 2368, EOT_ID]], np.int32)
    got = text_word_mask(ms.Tensor(tokens)).asnumpy()
    np.testing.assert_array_equal(got, [[0, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 0]])


class TinyTokenModel(nn.Cell):
    """Dense layers producing image tokens (B, L1, D) and text tokens (B, L2, D)."""

    def __init__(self):
        super().__init__()
        self.image_proj = nn.Dense(6, 8)
        self.text_proj = nn.Dense(5, 8)

    def construct(self, image_in, text_in, valid):
        return token_alignment_loss(self.image_proj(image_in), self.text_proj(text_in), valid)


class TrainStep(nn.Cell):
    def __init__(self, model, optimizer):
        super().__init__()
        self.model, self.optimizer = model, optimizer
        self.grad = ms.value_and_grad(model, None, optimizer.parameters)

    def construct(self, image_in, text_in, valid):
        loss, grads = self.grad(image_in, text_in, valid)
        self.optimizer(grads)
        return loss


def test_jitted_train_step_lowers_the_loss():
    ms.set_seed(0)
    rng = np.random.default_rng(3)
    image_in = ms.Tensor(rng.normal(size=(4, 9, 6)).astype(np.float32))
    text_in = ms.Tensor(rng.normal(size=(4, 7, 5)).astype(np.float32))
    valid = ms.Tensor(word_mask([3, 5, 0, 2], 7))
    model = TinyTokenModel()
    step = TrainStep(model, nn.Adam(model.trainable_params(), learning_rate=0.05))
    before = {p.name: p.asnumpy().copy() for p in model.trainable_params()}
    losses = [float(step(image_in, text_in, valid).asnumpy()) for _ in range(8)]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]
    assert all(np.any(p.asnumpy() != before[p.name]) for p in model.trainable_params())
