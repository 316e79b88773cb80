"""Single MindSpore ops (graph mode) on the shapes of a text tower's MLP: MindSpore's kernel speed, as
opposed to our graph's (docs/performance.md compares them with PyTorch's).

x is (batch * text_length, width), w (4 * width, width), h (batch * text_length, 4 * width). Each op
is its own compiled graph; `best_ms` holds the best of `steps` calls after `warmup`, in milliseconds.
"""
import mindspore as ms
import numpy as np
from mindspore import nn, ops

from mindclip.bench.harness import time_calls

OPS = ("matmul", "gelu", "gelu_fwd_bwd", "layer_norm", "mul_add")


def op_shapes(batch, text_length, width):
    """x (rows, width), w (4 width, width), h (rows, 4 width) with rows = batch * text_length."""
    rows, hidden = batch * text_length, 4 * width
    return {"x": [rows, width], "w": [hidden, width], "h": [rows, hidden]}


class Op(nn.Cell):
    """`(x, w, h) -> output` of one op of the text MLP."""

    def __init__(self, kind, hidden):
        super().__init__()
        self.kind = kind
        self.layer_norm = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=1e-5)
        self.gamma, self.beta = ms.Tensor(np.ones(hidden, np.float32)), ms.Tensor(np.zeros(hidden, np.float32))

    def construct(self, x, w, h):
        if self.kind == "matmul":
            return ops.matmul(x, w.T)  # (rows, hidden)
        if self.kind == "gelu":
            return ops.gelu(h, approximate="none")
        if self.kind == "layer_norm":
            return self.layer_norm(h, self.gamma, self.beta)[0]
        return h * 2.0 + 1.0


class Gelu(nn.Cell):
    def construct(self, h):
        return ops.gelu(h, approximate="none")


class GeluGrad(nn.Cell):
    """Forward and backward of the exact GELU, incoming gradient = h."""

    def __init__(self):
        super().__init__()
        self.gelu = Gelu()
        self.grad = ops.GradOperation(sens_param=True)

    def construct(self, x, w, h):
        return self.grad(self.gelu)(h, h)


def ops_bench(batch=32, text_length=77, width=512, steps=5, warmup=1, seed=0):
    """The result dict: the shapes and {op: best ms} for each of OPS."""
    ms.set_context(mode=ms.GRAPH_MODE)
    shapes, rng = op_shapes(batch, text_length, width), np.random.default_rng(seed)
    x, w, h = (ms.Tensor(rng.standard_normal(shapes[k]).astype(np.float32)) for k in "xwh")
    best = {}
    for name in OPS:
        cell = GeluGrad() if name == "gelu_fwd_bwd" else Op(name, shapes["h"][1])
        best[name] = round(1000 * time_calls(lambda: cell(x, w, h), steps, warmup).min_s, 3)
    return {"framework": "mindspore", "version": ms.__version__, "shapes": shapes, "best_ms": best}
