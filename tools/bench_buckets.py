"""How batches fall into text-length buckets, and how much text-tower work bucketing saves.

    python tools/bench_buckets.py --shards "demo_out/data/mindrecord/train-*.mindrecord"
    python tools/bench_buckets.py --captions my_captions.txt --batch 256
    python tools/bench_buckets.py --synthetic-cc3m 100000 --batch 32

Captions are tokenized (context 77), shuffled with the seed and cut into batches as in training;
each batch gets the bucket `mindclip.data.buckets.bucket_length` picks. Reports the share of
batches per bucket and the mean positions per batch against the full context (the text tower's
linear layers scale with it; attention with its square).

`--synthetic-cc3m N`: no caption set ships with mindclip and nothing is downloaded, so this draws
N token counts from a log-normal with median 12 BPE tokens (about 10 words at ~1.2 tokens per word,
CC3M's median) and sigma 0.45, cut to 75 (+ SOT and EOT). It models caption lengths only.
"""
import argparse
import json
import os
import sys
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mindclip._io import append_json_line  # noqa: E402
from mindclip.data.buckets import DEFAULT_BUCKETS, bucket_length, resolve_buckets  # noqa: E402

CC3M_MEDIAN_TOKENS, CC3M_SIGMA = 12, 0.45


def cc3m_token_counts(rng, size, context_length):
    """BPE ids per caption (SOT and EOT not counted) of `size` CC3M-like captions, 1..context_length-2."""
    counts = np.round(np.exp(rng.normal(np.log(CC3M_MEDIAN_TOKENS), CC3M_SIGMA, size)))
    return np.minimum(np.maximum(counts, 1), context_length - 2).astype(int)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--shards", help="MindRecord shard glob (captions are read from it)")
    source.add_argument("--captions", help="text file, one caption per line")
    source.add_argument("--synthetic-cc3m", type=int, metavar="N", help="N synthetic CC3M-like lengths")
    p.add_argument("--batch", type=int, default=32, help="batch size per rank")
    p.add_argument("--buckets", default=",".join(map(str, DEFAULT_BUCKETS)), help="comma-separated lengths")
    p.add_argument("--context-length", type=int, default=77)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="append the result as a JSON line to this file")
    return p.parse_args(argv)


def caption_lengths(args):
    """Positions each caption uses (SOT + BPE ids + EOT, at most the context length)."""
    if args.synthetic_cc3m:
        return cc3m_token_counts(np.random.default_rng(args.seed), args.synthetic_cc3m, args.context_length) + 2
    from mindclip.tokenizer import default_tokenizer

    if args.shards:
        import mindspore.dataset as ds

        from mindclip.data.pipeline import list_shards

        reader = ds.MindDataset(list_shards(args.shards), columns_list=["caption"], shuffle=False)
        captions = [_text(row["caption"]) for row in reader.create_dict_iterator(output_numpy=True)]
    else:
        with open(args.captions, encoding="utf-8") as f:
            captions = [line.strip() for line in f if line.strip()]
    if not captions:
        raise SystemExit("no captions found")
    tokens = default_tokenizer()(captions, args.context_length)
    return (np.asarray(tokens) != 0).sum(axis=1)


def _text(value):
    value = value.item() if isinstance(value, np.ndarray) else value
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def bucket_report(lengths, batch, buckets, seed):
    """Share of batches per bucket and mean positions per batch, over shuffled full batches."""
    order = np.random.default_rng(seed).permutation(len(lengths))
    batches = len(order) // batch
    if batches == 0:
        raise SystemExit(f"{len(lengths)} captions make no batch of {batch}")
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
    buckets = resolve_buckets([int(b) for b in args.buckets.split(",") if b.strip()], args.context_length)
    result = bucket_report(caption_lengths(args), args.batch, buckets, args.seed)
    result["source"] = args.shards or args.captions or f"synthetic-cc3m:{args.synthetic_cc3m}"
    print(json.dumps(result))
    append_json_line(args.json, result)
    return result


if __name__ == "__main__":
    main()
