"""The Hungarian matcher of LightCLIP's token loss: the host function alone, and the op in a graph.

    python -m tools.bench hungarian --batches 32,256 --shapes 49x77,196x77 --words 16,75

A shape is L1xL2: L1 image tokens (49 = 7x7, 196 = 14x14) by L2 text positions. `--words` valid (word)
text tokens per caption (75 = every position between SOT and EOT of 77). Costs are uniform in [0, 2]
(the range of 1 - cosine). One JSON line per case: `host_ms` and `host_cpu_ms` (single-threaded, so
hardly moved by a busy machine) of `mindclip.ops.match_tokens`, and `graph_ms` of one call of a
compiled graph holding only the op (launch, host copies and the matching); medians of `--steps`.
Measured by `mindclip.bench.hungarian`.
"""
from mindclip.bench.harness import emit
from tools.bench._cli import bench_parser, fail, int_list, refusing


def parse_args(argv):
    p = bench_parser("hungarian", __doc__, ["batches", "steps", "warmup", "json", "seed"],
                     batches=[32, 256], warmup=1)
    p.add_argument("--shapes", default="49x77,196x77", help="L1xL2 (image x text tokens), comma-separated")
    p.add_argument("--words", type=int_list, default=[16, 75], help="valid text tokens per caption")
    args = p.parse_args(argv)
    try:
        args.shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(",") if s.strip()]
    except ValueError:
        fail(f"--shapes {args.shapes!r}: give L1xL2 pairs such as 49x77,196x77")
    for (_, n_text) in args.shapes:
        for words in args.words:
            if words > n_text - 2:
                fail(f"--words {words}: at most L2 - 2 = {n_text - 2} words fit in {n_text} text positions")
    return args


@refusing
def main(argv):
    args = parse_args(argv)
    from mindclip.bench.hungarian import hungarian_rows

    return [emit(row, args.json)
            for row in hungarian_rows(args.shapes, args.words, args.batches, args.steps, args.warmup, args.seed)]
