"""The Hungarian matcher of LightCLIP's token loss: the host function alone, and the op in a graph.

A case is (batch, L1 image tokens, L2 text positions, words): costs uniform in [0, 2] (the range of
1 - cosine), `words` valid text tokens per caption after SOT. Per case: `host_ms` and `host_cpu_ms`
(single-threaded, so hardly moved by a busy machine) of `mindclip.ops.match_tokens`, and `graph_ms` of
one call of a compiled graph holding only the op (launch, host copies and the matching); medians.
"""
import mindspore as ms
import numpy as np
from mindspore import nn

from mindclip.bench.harness import time_calls
from mindclip.ops import hungarian_match, match_tokens


class MatchGraph(nn.Cell):
    """The op alone in a compiled graph: what one call costs inside a train step."""

    def construct(self, cost, text_valid):
        return hungarian_match(cost, text_valid)


def bench_case(graph, batch, n_image, n_text, words, steps, warmup, rng):
    cost = rng.uniform(0, 2, size=(batch, n_image, n_text)).astype(np.float32)
    valid = np.zeros((batch, n_text), np.int32)
    valid[:, 1:1 + words] = 1
    host = time_calls(lambda: match_tokens(cost, valid), steps, warmup)
    cost_t, valid_t = ms.Tensor(cost), ms.Tensor(valid)
    in_graph = time_calls(lambda: graph(cost_t, valid_t), steps, warmup)
    return {"batch": batch, "image_tokens": n_image, "text_tokens": n_text, "words": words,
            "host_ms": round(1000 * host.median_s, 3), "host_cpu_ms": round(1000 * host.cpu_median_s, 3),
            "graph_ms": round(1000 * in_graph.median_s, 3)}


def hungarian_rows(shapes, words, batches, steps=5, warmup=1, seed=0):
    """One result dict per (L1, L2) of `shapes`, words count and batch size, yielded as each is measured."""
    ms.set_context(mode=ms.GRAPH_MODE)
    graph, rng = MatchGraph(), np.random.default_rng(seed)
    for n_image, n_text in shapes:
        for count in words:
            for batch in batches:
                yield bench_case(graph, batch, n_image, n_text, count, steps, warmup, rng)
