"""Single MindSpore ops (graph mode) on the shapes of a text tower's MLP: what is MindSpore's
kernel speed, as opposed to our graph (docs/performance.md compares them with PyTorch's).

    python -m tools.bench ops                                   # lightclip_mobilenetv2: 32 x 77 rows, width 512
    python -m tools.bench ops --batch 8 --text-length 16 --width 64

x is (batch * text_length, width), w (4 * width, width), h (batch * text_length, 4 * width). Each op
is its own compiled graph; `best_ms` holds the best of `--steps` calls after `--warmup`, in milliseconds.
Measured by `mindclip.bench.ops`.
"""
from mindclip.bench.harness import emit
from tools.bench._cli import bench_parser, refusing


@refusing
def main(argv):
    p = bench_parser("ops", __doc__, ["batch", "text_length", "steps", "warmup", "json", "seed"], steps=5, warmup=1)
    p.add_argument("--width", type=int, default=512, help="the text tower's width (hidden = 4 x width)")
    args = p.parse_args(argv)
    from mindclip.bench.ops import ops_bench

    return emit(ops_bench(args.batch, args.text_length, args.width, args.steps, args.warmup, args.seed), args.json)
