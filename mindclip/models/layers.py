"""Transformer building blocks shared by the text tower and the LightCLIP fusion module.

Names follow open_clip (`in_proj_weight`, `out_proj`, `c_fc`, `c_proj`, `ln_1`, `ln_2`) so that
open_clip weights map one to one. LayerNorm and softmax run in float32 whatever the input dtype.
"""
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


def make_activation(name):
    """`gelu` (exact, erf-based) or `quick_gelu`."""
    if name == "gelu":
        return nn.GELU(approximate=False)
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
        self.scale = self.head_dim ** -0.5
        self.in_proj_weight = ms.Parameter(
            initializer(Normal(width ** -0.5), (3 * width, width), ms.float32), name="in_proj_weight")
        self.in_proj_bias = ms.Parameter(initializer("zeros", (3 * width,), ms.float32), name="in_proj_bias")
        self.out_proj = nn.Dense(width, width)
        self.out_proj.bias.set_data(initializer("zeros", (width,), ms.float32))

    def _split_heads(self, x):
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.heads, self.head_dim).transpose(0, 2, 1, 3)  # (B, h, L, d)

    def construct(self, query, context=None, attn_mask=None, key_padding_mask=None):
        w = self.width
        if context is None:
            q, k, v = ops.split(linear(query, self.in_proj_weight, self.in_proj_bias), w, axis=-1)
        else:
            q = linear(query, self.in_proj_weight[:w], self.in_proj_bias[:w])
            k, v = ops.split(linear(context, self.in_proj_weight[w:], self.in_proj_bias[w:]), w, axis=-1)
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)  # (B, h, L|S, d)
        scores = ops.matmul(q * self.scale, k.transpose(0, 1, 3, 2)).astype(ms.float32)  # (B, h, L, S)
        if attn_mask is not None:
            scores = scores + attn_mask
        if key_padding_mask is not None:
            pad = key_padding_mask.astype(ms.float32) * MASK_VALUE  # (B, S)
            scores = scores + pad.reshape(pad.shape[0], 1, 1, pad.shape[1])
        attn = ops.softmax(scores, axis=-1).astype(v.dtype)
        out = ops.matmul(attn, v).transpose(0, 2, 1, 3)  # (B, L, h, d)
        out = out.reshape(out.shape[0], out.shape[1], w)  # (B, L, W)
        return self.out_proj(out)


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


__all__ = ["LayerNorm", "QuickGELU", "make_activation", "linear", "causal_mask", "MultiheadAttention", "MLP",
           "ResidualAttentionBlock", "CrossAttentionBlock", "init_transformer_", "normal_", "l2_normalize",
           "MASK_VALUE"]
