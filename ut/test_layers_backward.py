"""The hand-written backward passes of GELU and the attention core equal MindSpore's autodiff of the
plain ops (and GELU's derivative equals NumPy's), masks included."""
import math

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops
from scipy.special import erf

from mindclip.models.layers import GELU, AttentionCore, MultiheadAttention, causal_mask


class PlainAttention(nn.Cell):
    """The same forward as AttentionCore, differentiated by MindSpore."""

    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def construct(self, q, k, v, bias):
        scores = ops.bmm(q * self.scale, k.transpose(0, 2, 1)) + bias
        return ops.bmm(ops.softmax(scores, axis=-1), v)


class WeightedSum(nn.Cell):
    """sum(net(*inputs) * w): a scalar whose gradient reaches every output element differently."""

    def __init__(self, net, weights):
        super().__init__()
        self.net = net
        self.weights = weights

    def construct(self, *inputs):
        return (self.net(*inputs) * self.weights).sum()


def input_grads(net, inputs, out_shape, seed=0):
    weights = ms.Tensor(np.random.default_rng(seed).standard_normal(out_shape).astype(np.float32))
    grads = ops.GradOperation(get_all=True)(WeightedSum(net, weights))(*inputs)
    return [g.asnumpy() for g in grads]


def test_gelu_forward_and_backward_equal_the_formula():
    x = np.linspace(-6, 6, 301, dtype=np.float32).reshape(7, 43)
    gelu = GELU()
    np.testing.assert_allclose(gelu(ms.Tensor(x)).asnumpy(), 0.5 * x * (1 + erf(x / math.sqrt(2))), atol=1e-6)
    grad = input_grads(gelu, [ms.Tensor(x)], x.shape)[0]
    weights = np.random.default_rng(0).standard_normal(x.shape)
    cdf, pdf = 0.5 * (1 + erf(x / math.sqrt(2))), np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(grad, weights * (cdf + x * pdf), rtol=1e-5, atol=1e-6)
    assert np.allclose(gelu(ms.Tensor(x)).asnumpy(), nn.GELU(approximate=False)(ms.Tensor(x)).asnumpy(), atol=1e-6)


@pytest.mark.parametrize("mask", ["none", "causal", "padding"])
def test_attention_core_backward_equals_autodiff(mask):
    rng = np.random.default_rng(1)
    n, length, width = 6, 9, 16
    q, k, v = (ms.Tensor(rng.standard_normal((n, length, width)).astype(np.float32)) for _ in range(3))
    if mask == "causal":
        bias = causal_mask(length).asnumpy()[None]
    elif mask == "padding":
        bias = np.zeros((n, 1, length), np.float32)
        bias[::2, :, -3:] = -1e9  # every other row ignores its last three keys
    else:
        bias = np.zeros((1, 1, 1), np.float32)
    inputs = [q, k, v, ms.Tensor(bias)]
    scale = width ** -0.5
    ours, plain = AttentionCore(scale), PlainAttention(scale)
    np.testing.assert_allclose(ours(*inputs).asnumpy(), plain(*inputs).asnumpy(), rtol=1e-5, atol=1e-6)
    for got, want in zip(input_grads(ours, inputs, (n, length, width))[:3],
                         input_grads(plain, inputs, (n, length, width))[:3]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        assert np.abs(want).max() > 1e-3  # a real gradient


def test_multihead_attention_with_key_padding_ignores_padded_keys():
    rng = np.random.default_rng(2)
    attention = MultiheadAttention(16, 4)
    query = rng.standard_normal((2, 3, 16)).astype(np.float32)
    context = rng.standard_normal((2, 5, 16)).astype(np.float32)
    padding = np.zeros((2, 5), np.bool_)
    padding[0, 3:] = True
    out = attention(ms.Tensor(query), ms.Tensor(context), None, ms.Tensor(padding)).asnumpy()
    changed = context.copy()
    changed[0, 3:] += 5.0  # only padded keys of sample 0 change
    again = attention(ms.Tensor(query), ms.Tensor(changed), None, ms.Tensor(padding)).asnumpy()
    np.testing.assert_allclose(again, out, atol=1e-6)
    assert np.abs(attention(ms.Tensor(query), ms.Tensor(changed)).asnumpy() - out).max() > 1e-3
