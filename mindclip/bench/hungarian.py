"""The Hungarian matcher of LightCLIP's token loss: the host function alone, and the op in a graph.

    python -m tools.bench hungarian --batches 32,256 --shapes 49x77,196x77 --words 16,75

A shape is L1xL2: L1 image tokens (49 = 7x7, 196 = 14x14) by L2 text positions. `--words` valid (word)
text tokens per caption (75 = every position between SOT and EOT of 77). Costs are uniform in [0, 2]
(the range of 1 - cosine). One JSON line per case: `host_ms` and `host_cpu_ms` (single-threaded, so
hardly moved by a busy machine) of `mindclip.ops.match_tokens`, and `graph_ms` of one call of a
compiled graph holding only the op (launch, host copies and the matching); medians of `--steps`.
"""
import mindspore as ms
import numpy as np
from mindspore import nn

from mindclip.ops import hungarian_match, match_tokens
from tools.bench.harness import bench_parser, emit, fail, int_list, time_calls


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


class MatchGraph(nn.Cell):
    """The op alone in a compiled graph: what one call costs inside a train step."""

    def construct(self, cost, text_valid):
        return hungarian_match(cost, text_valid)


def bench_case(graph, batch, n_image, n_text, words, args, rng):
    cost = rng.uniform(0, 2, size=(batch, n_image, n_text)).astype(np.float32)
    valid = np.zeros((batch, n_text), np.int32)
    valid[:, 1:1 + words] = 1
    host = time_calls(lambda: match_tokens(cost, valid), args.steps, args.warmup)
    cost_t, valid_t = ms.Tensor(cost), ms.Tensor(valid)
    in_graph = time_calls(lambda: graph(cost_t, valid_t), args.steps, args.warmup)
    return {"batch": batch, "image_tokens": n_image, "text_tokens": n_text, "words": words,
            "host_ms": round(1000 * host.median_s, 3), "host_cpu_ms": round(1000 * host.cpu_median_s, 3),
            "graph_ms": round(1000 * in_graph.median_s, 3)}


def main(argv=None):
    args = parse_args(argv)
    ms.set_context(mode=ms.GRAPH_MODE)
    graph, rng, rows = MatchGraph(), np.random.default_rng(args.seed), []
    for n_image, n_text in args.shapes:
        for words in args.words:
            for batch in args.batches:
                rows.append(emit(bench_case(graph, batch, n_image, n_text, words, args, rng), args.json))
    return rows
