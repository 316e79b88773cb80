"""How batches fall into text-length buckets, and how much text-tower work bucketing saves.

Captions are tokenized (at most `text_length` positions), shuffled with the seed and cut into batches
as in training; each batch gets the bucket `mindclip.data.buckets.bucket_length` picks. The report holds
the share of batches per bucket and the mean positions per batch against the full context (the text
tower's linear layers scale with it, attention with its square). Synthetic captions model
the lengths only (`mindclip.data.synthetic`: no caption set ships, nothing is downloaded; cc3m is a
log-normal with median 12 BPE tokens, about CC3M's captions).
"""
import os
from collections import Counter

import numpy as np

from mindclip.bench.harness import BenchError
from mindclip.data.buckets import bucket_length
from mindclip.data.synthetic import synthetic_tokens


def caption_positions(text_length, seed, shards=None, captions=None, lengths=None, count=100000):
    """Positions each caption uses (SOT + BPE ids + EOT, at most `text_length`), from one source:
    MindRecord `shards` (a glob), a `captions` file (one caption a line), or `count` synthetic captions
    of `lengths` (uniform or cc3m)."""
    if lengths:
        tokens = synthetic_tokens(np.random.default_rng(seed), count, text_length, lengths)
        return (tokens != 0).sum(axis=1)
    from mindclip.tokenizer import default_tokenizer

    texts = read_shard_captions(shards) if shards else read_caption_lines(captions)
    if not texts:
        raise BenchError(f"{shards or captions}: no captions")
    return (np.asarray(default_tokenizer()(texts, text_length)) != 0).sum(axis=1)


def read_shard_captions(pattern):
    from mindclip.data.pipeline import read_captions

    try:
        return read_captions(pattern)
    except FileNotFoundError as e:
        raise BenchError(str(e)) from None


def read_caption_lines(path):
    """The non-empty lines of a text file, stripped."""
    if not os.path.isfile(path):
        raise BenchError(f"captions file {path}: no such file")
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def bucket_report(lengths, batch, buckets, seed):
    """Share of batches per bucket and mean positions per batch, over shuffled full batches."""
    order = np.random.default_rng(seed).permutation(len(lengths))
    batches = len(order) // batch
    if batches == 0:
        raise BenchError(f"batch {batch}: {len(lengths)} captions make no full batch")
    picked = []
    for b in range(batches):
        rows = lengths[order[b * batch:(b + 1) * batch]]
        tokens = (np.arange(buckets[-1])[None, :] < rows[:, None]).astype(np.int32)  # (B, L) non-pad mask
        picked.append(bucket_length(buckets, tokens))
    counts = Counter(picked)
    return {
        "captions": int(len(lengths)), "batches": batches, "batch": batch, "buckets": list(buckets),
        "caption_positions": {"median": float(np.median(lengths)), "p95": float(np.percentile(lengths, 95)),
                              "max": int(lengths.max())},
        "share_of_batches": {str(b): round(counts.get(b, 0) / batches, 4) for b in buckets},
        "mean_positions": round(float(np.mean(picked)), 2),
        "positions_vs_full": round(float(np.mean(picked)) / buckets[-1], 4),
    }
