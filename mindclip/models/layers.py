"""Transformer building blocks shared by the text tower and the LightCLIP fusion module.

Names follow open_clip (`in_proj_weight`, `out_proj`, `c_fc`, `c_proj`, `ln_1`, `ln_2`) so that
open_clip weights map one to one. LayerNorm and softmax run in float32 whatever the input dtype.
"""
import math

import numpy as np
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import Normal, initializer

# Added to masked attention scores (in float32): exp() of it is exactly 0, like -inf, but a row
# that is fully masked stays finite instead of turning into NaN.
MASK_VALUE = -1e9


def l2_normalize(x, eps=1e-12):
    """x / max(||x||, eps) over the last axis, as torch's F.normalize.

    Written with rsqrt (`ops.L2Normalize`'s backward is ~160x slower). The clamp is on the norm,
    not an eps added to the squared norm: features of norm ~1e-8 (a randomly initialised
    MobileNet-V2 in inference mode) must still come out with unit length.
    """
    return x * ops.rsqrt(ops.maximum((x * x).sum(-1, keepdims=True), eps * eps))


_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class LayerNorm(nn.Cell):
    """LayerNorm over the last axis, computed in float32 (eps 1e-5 as in PyTorch; nn.LayerNorm uses 1e-7)."""

    def __init__(self, width, eps=1e-5):
        super().__init__()
        self.weight = ms.Parameter(initializer("ones", (width,), ms.float32), name="weight")
        self.bias = ms.Parameter(initializer("zeros", (width,), ms.float32), name="bias")
        self.layer_norm = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=eps)

    def construct(self, x):
        y, _, _ = self.layer_norm(x.astype(ms.float32), self.weight, self.bias)
        return y.astype(x.dtype)


class QuickGELU(nn.Cell):
    """x * sigmoid(1.702 x): the activation of OpenAI's original CLIP weights."""

    def construct(self, x):
        return x * ops.sigmoid(1.702 * x)


class GELU(nn.Cell):
    """Exact (erf-based) GELU, x * Phi(x), whose backward keeps only its input.

    MindSpore's `nn.GELU(approximate=False)` keeps about a dozen tensors of the input's size per call
    for its backward on the CPU backend, and `Cell.recompute()` does not free them: in a width-512
    transformer at 77 positions it was 3/4 of the text tower's activation memory (docs/performance.md).
    Here the backward recomputes Phi(x) and phi(x) from x: dy * (Phi(x) + x * phi(x)).
    """

    def construct(self, x):
        return 0.5 * x * (1.0 + ops.erf(x * _INV_SQRT2))

    def bprop(self, x, out, dout):
        x = ops.depend(x, dout)  # recompute when the gradient arrives, not as soon as x exists
        cdf = 0.5 * (1.0 + ops.erf(x * _INV_SQRT2))
        pdf = ops.exp(-0.5 * x * x) * _INV_SQRT_2PI
        return (dout * (cdf + x * pdf),)


def make_activation(name):
    """`gelu` (exact, erf-based) or `quick_gelu`."""
    if name == "gelu":
        return GELU()
    if name == "quick_gelu":
        return QuickGELU()
    raise ValueError(f"unknown activation {name!r}; expected 'gelu' or 'quick_gelu'")


def linear(x, weight, bias=None):
    """x @ weight.T + bias for x of any rank (..., in); weight (out, in) as in nn.Dense."""
    lead_shape = x.shape[:-1]
    y = ops.matmul(x.reshape(-1, x.shape[-1]), weight.astype(x.dtype).T)
    if bias is not None:
        y = y + bias.astype(y.dtype)
    return y.reshape(lead_shape + (weight.shape[0],))


def causal_mask(length):
    """(length, length) additive float32 mask: 0 on and below the diagonal, MASK_VALUE above."""
    return ms.Tensor(np.triu(np.full((length, length), MASK_VALUE, np.float32), k=1))


class AttentionCore(nn.Cell):
    """softmax(q k^T * scale + bias) v for q (N, L, d), k and v (N, S, d), bias broadcastable to (N, L, S).

    The backward keeps only the inputs and recomputes the attention weights P (one more (N, L, S)
    product), then dV = P^T dO, dS = P * (dO V^T - rowsum(P * dO V^T)), dQ = dS K s, dK = dS^T Q s.
    MindSpore's autodiff of the same three ops kept dozens of (N, L, S) and (N, L, d) tensors per
    call on the CPU backend (docs/performance.md). Scores and softmax in float32; `bias` is a
    constant (no gradient: a causal mask, padding).
    """

    def __init__(self, scale):
        super().__init__()
        self.scale = scale
        self.softmax = ops.Softmax(axis=-1)
        self.matmul = ops.BatchMatMul()
        self.matmul_nt = ops.BatchMatMul(transpose_b=True)  # a @ b^T
        self.matmul_tn = ops.BatchMatMul(transpose_a=True)  # a^T @ b

    def _weights(self, q, k, bias):
        scores = self.matmul_nt(q * self.scale, k).astype(ms.float32) + bias  # (N, L, S)
        return self.softmax(scores)

    def construct(self, q, k, v, bias):
        return self.matmul(self._weights(q, k, bias).astype(v.dtype), v)  # (N, L, d)

    def bprop(self, q, k, v, bias, out, dout):
        q = ops.depend(q, dout)  # recompute when the gradient arrives, not as soon as q exists
        weights = self._weights(q, k, bias)  # (N, L, S) float32
        dv = self.matmul_tn(weights.astype(dout.dtype), dout)  # (N, S, d)
        dweights = self.matmul_nt(dout, v).astype(ms.float32)  # (N, L, S)
        dscores = weights * (dweights - (dweights * weights).sum(axis=-1, keepdims=True))
        dscores = (dscores * self.scale).astype(q.dtype)
        dq = self.matmul(dscores, k)  # (N, L, d)
        dk = self.matmul_tn(dscores, q)  # (N, S, d)
        return dq, dk, dv.astype(v.dtype), ops.zeros_like(bias)


class MultiheadAttention(nn.Cell):
    """Multi-head attention with open_clip's packed projection (`in_proj_weight` (3W, W): q, k, v rows).

    construct(query (B, L, W), context (B, S, W) or None for self-attention,
              attn_mask (L, S) additive float or None, key_padding_mask (B, S) bool (True = ignore) or None)
        -> (B, L, W)
    """

    def __init__(self, width, heads):
        super().__init__()
        if width % heads:
            raise ValueError(f"attention width {width} is not divisible by heads {heads}")
        self.width = width
        self.heads = heads
        self.head_dim = width // heads
        self.in_proj_weight = ms.Parameter(
            initializer(Normal(width ** -0.5), (3 * width, width), ms.float32), name="in_proj_weight")
        self.in_proj_bias = ms.Parameter(initializer("zeros", (3 * width,), ms.float32), name="in_proj_bias")
        self.out_proj = nn.Dense(width, width)
        self.out_proj.bias.set_data(initializer("zeros", (width,), ms.float32))
        self.core = AttentionCore(self.head_dim ** -0.5)

    def _split_heads(self, x):
        batch, length, _ = x.shape
        x = x.reshape(batch, length, self.heads, self.head_dim).transpose(0, 2, 1, 3)  # (B, h, L, d)
        return x.reshape(batch * self.heads, length, self.head_dim)  # (B*h, L, d)

    def _bias(self, batch, attn_mask, key_padding_mask):
        """The additive float32 mask, broadcastable to (B*h, L, S)."""
        bias = ops.zeros((1, 1, 1), ms.float32)
        if attn_mask is not None:
            bias = bias + attn_mask  # (1, L, S)
        if key_padding_mask is not None:
            pad = key_padding_mask.astype(ms.float32) * MASK_VALUE  # (B, S)
            pad = ops.broadcast_to(pad.reshape(batch, 1, 1, -1), (batch, self.heads, 1, pad.shape[1]))
            bias = bias + pad.reshape(batch * self.heads, 1, -1)  # (B*h, 1|L, S)
        return bias

    def construct(self, query, context=None, attn_mask=None, key_padding_mask=None):
        w = self.width
        if context is None:
            q, k, v = ops.split(linear(query, self.in_proj_weight, self.in_proj_bias), w, axis=-1)
        else:
            q = linear(query, self.in_proj_weight[:w], self.in_proj_bias[:w])
            k, v = ops.split(linear(context, self.in_proj_weight[w:], self.in_proj_bias[w:]), w, axis=-1)
        batch, length = query.shape[0], query.shape[1]
        bias = self._bias(batch, attn_mask, key_padding_mask)
        out = self.core(self._split_heads(q), self._split_heads(k), self._split_heads(v), bias)  # (B*h, L, d)
        out = out.reshape(batch, self.heads, length, self.head_dim).transpose(0, 2, 1, 3)  # (B, L, h, d)
        return self.out_proj(out.reshape(batch, length, w))  # (B, L, W)


class MLP(nn.Cell):
    """Dense(W -> hidden), activation, Dense(hidden -> W)."""

    def __init__(self, width, hidden, act="gelu"):
        super().__init__()
        self.c_fc = nn.Dense(width, hidden)
        self.act = make_activation(act)
        self.c_proj = nn.Dense(hidden, width)
        self.c_fc.bias.set_data(initializer("zeros", (hidden,), ms.float32))
        self.c_proj.bias.set_data(initializer("zeros", (width,), ms.float32))

    def construct(self, x):
        return self.c_proj(self.act(self.c_fc(x)))


class ResidualAttentionBlock(nn.Cell):
    """Pre-LN transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, width, heads, mlp_ratio=4.0, act="gelu"):
        super().__init__()
        self.ln_1 = LayerNorm(width)
        self.attn = MultiheadAttention(width, heads)
        self.ln_2 = LayerNorm(width)
        self.mlp = MLP(width, int(width * mlp_ratio), act)

    def construct(self, x, attn_mask=None, key_padding_mask=None):
        x = x + self.attn(self.ln_1(x), None, attn_mask, key_padding_mask)  # (B, L, W)
        return x + self.mlp(self.ln_2(x))


class CrossAttentionBlock(nn.Cell):
    """Pre-LN cross-attention block: x + attn(ln_q(x), ln_kv(context)), then x + mlp(ln_2(x)).

    Each query position is processed independently of the other queries (no self-attention), so
    running it on a gathered subset of positions gives exactly the rows of the full run.
    """

    def __init__(self, width, heads, mlp_ratio=4.0, act="gelu"):
        super().__init__()
        self.ln_q = LayerNorm(width)
        self.ln_kv = LayerNorm(width)
        self.attn = MultiheadAttention(width, heads)
        self.ln_2 = LayerNorm(width)
        self.mlp = MLP(width, int(width * mlp_ratio), act)

    def construct(self, x, context, key_padding_mask=None):
        x = x + self.attn(self.ln_q(x), self.ln_kv(context), None, key_padding_mask)  # (B, L, W)
        return x + self.mlp(self.ln_2(x))


def init_transformer_(blocks, width):
    """open_clip's init: attn in-proj std W^-0.5, out-proj and c_proj std W^-0.5 (2 layers)^-0.5, c_fc (2W)^-0.5."""
    proj_std = width ** -0.5 * (2 * len(blocks)) ** -0.5
    for block in blocks:
        normal_(block.attn.in_proj_weight, width ** -0.5)
        normal_(block.attn.out_proj.weight, proj_std)
        normal_(block.mlp.c_fc.weight, (2 * width) ** -0.5)
        normal_(block.mlp.c_proj.weight, proj_std)


def normal_(param, std):
    """Re-initialise a parameter from N(0, std^2) in place."""
    param.set_data(initializer(Normal(std), param.shape, param.dtype))


__all__ = ["LayerNorm", "GELU", "AttentionCore", "QuickGELU", "make_activation", "linear", "causal_mask", "MultiheadAttention", "MLP",
           "ResidualAttentionBlock", "CrossAttentionBlock", "init_transformer_", "normal_", "l2_normalize",
           "MASK_VALUE"]
