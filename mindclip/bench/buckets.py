"""How batches fall into text-length buckets, and how much text-tower work bucketing saves.

    python -m tools.bench buckets --lengths cc3m --count 100000 --batch 32
    python -m tools.bench buckets --shards "demo_out/data/mindrecord/train-*.mindrecord"
    python -m tools.bench buckets --captions my_captions.txt --batch 256

Captions are tokenized (`--text-length` 77), shuffled with the seed and cut into batches as in
training; each batch gets the bucket `mindclip.data.buckets.bucket_length` picks. Reports the share
of batches per bucket and the mean positions per batch against the full context (the text tower's
linear layers scale with it, attention with its square). `--lengths cc3m|uniform` draws `--count`
synthetic caption lengths instead (`mindclip.data.synthetic`: no caption set ships, nothing is
downloaded; cc3m is a log-normal with median 12 BPE tokens, about CC3M's captions).
"""
from collections import Counter

import numpy as np

from mindclip.data.buckets import DEFAULT_BUCKETS, bucket_length, resolve_buckets
from mindclip.data.synthetic import synthetic_tokens
from tools.bench.harness import bench_parser, emit, fail, int_list


def parse_args(argv):
    p = bench_parser("buckets", __doc__, ["batch", "lengths", "text_length", "json", "seed"], lengths=None)
    p.add_argument("--shards", help="MindRecord shard glob (captions are read from it)")
    p.add_argument("--captions", help="text file, one caption per line")
    p.add_argument("--count", type=int, default=100000, help="synthetic captions with --lengths")
    p.add_argument("--buckets", type=int_list, default=list(DEFAULT_BUCKETS), help="e.g. 16,32,48")
    args = p.parse_args(argv)
    if sum(x is not None for x in (args.shards, args.captions, args.lengths)) != 1:
        fail("give exactly one caption source: --shards, --captions or --lengths")
    return args


def caption_positions(args):
    """Positions each caption uses (SOT + BPE ids + EOT, at most --text-length)."""
    if args.lengths:
        tokens = synthetic_tokens(np.random.default_rng(args.seed), args.count, args.text_length, args.lengths)
        return (tokens != 0).sum(axis=1)
    from mindclip.tokenizer import default_tokenizer

    if args.shards:
        from mindclip.data.pipeline import read_captions

        try:
            captions = read_captions(args.shards)
        except FileNotFoundError as e:
            fail(f"--shards: {e}")
    else:
        with open(args.captions, encoding="utf-8") as f:
            captions = [line.strip() for line in f if line.strip()]
    if not captions:
        fail(f"{args.shards or args.captions}: no captions")
    return (np.asarray(default_tokenizer()(captions, args.text_length)) != 0).sum(axis=1)


def bucket_report(lengths, batch, buckets, seed):
    """Share of batches per bucket and mean positions per batch, over shuffled full batches."""
    order = np.random.default_rng(seed).permutation(len(lengths))
    batches = len(order) // batch
    if batches == 0:
        fail(f"--batch {batch}: {len(lengths)} captions make no full batch")
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


def main(argv=None):
    args = parse_args(argv)
    buckets = resolve_buckets(args.buckets, args.text_length)
    result = bucket_report(caption_positions(args), args.batch, buckets, args.seed)
    result["source"] = args.shards or args.captions or f"synthetic {args.lengths}: {args.count}"
    return emit(result, args.json)
