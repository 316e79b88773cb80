"""Measure the Hungarian matching op: host function alone, and the PyFunc op inside a compiled graph.

    python tools/bench_hungarian.py --batch 32 256 --shapes 49x77 196x77 --words 16 75

A shape is L1xL2: L1 image tokens (49 = 7x7, 196 = 14x14) by L2 text positions (77). `--words` is
the number of valid (word) text tokens per caption (75 = every position between SOT and EOT).
Costs are uniform random in [0, 2] (the range of 1 - cosine). Prints one line per case (median of
`--repeat` runs, in ms): wall time of the host function, its CPU time (single-threaded, so it does
not depend on how busy the machine is), and wall time of one call of the compiled graph holding
only the op (launch, host copies and the matching). With `--json`, writes the table there.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mindclip  # noqa: E402,F401  (sets the environment before mindspore loads)
import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402
from mindspore import nn  # noqa: E402

from mindclip.ops import hungarian_match, match_tokens  # noqa: E402


class MatchGraph(nn.Cell):
    """The op alone in a compiled graph: what one call costs inside a train step."""

    def construct(self, cost, text_valid):
        return hungarian_match(cost, text_valid)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, nargs="+", default=[32, 256])
    p.add_argument("--shapes", nargs="+", default=["49x77", "196x77"], help="L1xL2 (image x text tokens)")
    p.add_argument("--words", type=int, nargs="+", default=[16, 75], help="valid text tokens per caption")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", default=None, help="also write the results to this file")
    return p.parse_args(argv)


def median_ms(fn, repeat, clock=time.perf_counter):
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append((clock() - start) * 1000.0)
    return float(np.median(times))


def bench_case(graph, batch, n_image, n_text, words, repeat, rng):
    if not 0 < words <= n_text - 2:
        raise ValueError(f"bench_hungarian: --words {words} must be in 1..{n_text - 2} for L2={n_text}")
    cost = rng.uniform(0, 2, size=(batch, n_image, n_text)).astype(np.float32)
    valid = np.zeros((batch, n_text), np.int32)
    valid[:, 1:1 + words] = 1
    cost_t, valid_t = ms.Tensor(cost), ms.Tensor(valid)
    graph(cost_t, valid_t)[1].asnumpy()  # compile + warm up
    return {
        "batch": batch, "image_tokens": n_image, "text_tokens": n_text, "words": words,
        "host_ms": median_ms(lambda: match_tokens(cost, valid), repeat),
        "host_cpu_ms": median_ms(lambda: match_tokens(cost, valid), repeat, time.process_time),
        "graph_ms": median_ms(lambda: graph(cost_t, valid_t)[1].asnumpy(), repeat),
    }


def main(argv=None):
    args = parse_args(argv)
    ms.set_context(mode=ms.GRAPH_MODE)
    graph, rng, rows = MatchGraph(), np.random.default_rng(0), []
    for shape in args.shapes:
        n_image, n_text = (int(v) for v in shape.lower().split("x"))
        for words in args.words:
            for batch in args.batch:
                row = bench_case(graph, batch, n_image, n_text, words, args.repeat, rng)
                print(f"B={batch:4d} L1={n_image:3d} L2={n_text:3d} words={words:3d}: "
                      f"host {row['host_ms']:8.2f} ms (CPU {row['host_cpu_ms']:8.2f} ms), "
                      f"in graph {row['graph_ms']:8.2f} ms", flush=True)
                rows.append(row)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
