"""Single MindSpore ops (graph mode) on the shapes of a text tower's MLP: what is MindSpore's
kernel speed, as opposed to our graph (docs/performance.md compares them with PyTorch's).

    python -m tools.bench ops                                   # lightclip_mobilenetv2: 32 x 77 rows, width 512
    python -m tools.bench ops --batch 8 --text-length 16 --width 64

x is (batch * text_length, width), w (4 * width, width), h (batch * text_length, 4 * width). Each op
is its own compiled graph; `best_ms` holds the best of `--steps` calls after `--warmup`, in milliseconds.
"""
import mindspore as ms
import numpy as np
from mindspore import nn, ops

from tools.bench.harness import OPS, bench_parser, emit, op_shapes, time_calls


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


def main(argv=None):
    p = bench_parser("ops", __doc__, ["batch", "text_length", "steps", "warmup", "json", "seed"], steps=5, warmup=1)
    p.add_argument("--width", type=int, default=512, help="the text tower's width (hidden = 4 x width)")
    args = p.parse_args(argv)
    ms.set_context(mode=ms.GRAPH_MODE)
    shapes, rng = op_shapes(args.batch, args.text_length, args.width), np.random.default_rng(args.seed)
    x, w, h = (ms.Tensor(rng.standard_normal(shapes[k]).astype(np.float32)) for k in "xwh")
    best = {}
    for name in OPS:
        cell = GeluGrad() if name == "gelu_fwd_bwd" else Op(name, shapes["h"][1])
        best[name] = round(1000 * time_calls(lambda: cell(x, w, h), args.steps, args.warmup).min_s, 3)
    result = {"framework": "mindspore", "version": ms.__version__, "shapes": shapes, "best_ms": best}
    return emit(result, args.json)
