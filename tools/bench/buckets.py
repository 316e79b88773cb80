"""How batches fall into text-length buckets, and how much text-tower work bucketing saves.

    python -m tools.bench buckets --lengths cc3m --count 100000 --batch 32
    python -m tools.bench buckets --shards "demo_out/data/mindrecord/train-*.mindrecord"
    python -m tools.bench buckets --captions my_captions.txt --batch 256

Captions are tokenized (`--text-length` 77), shuffled with the seed and cut into batches as in
training; each batch gets the bucket `mindclip.data.buckets.bucket_length` picks. Reports the share
of batches per bucket and the mean positions per batch against the full context (the text tower's
linear layers scale with it, attention with its square). `--lengths cc3m|uniform` draws `--count`
synthetic caption lengths instead (`mindclip.data.synthetic`: no caption set ships, nothing is
downloaded; cc3m is a log-normal with median 12 BPE tokens, about CC3M's captions). Measured by
`mindclip.bench.buckets`.
"""
from mindclip.bench.buckets import bucket_report, caption_positions
from mindclip.bench.harness import emit
from mindclip.data.buckets import DEFAULT_BUCKETS, resolve_buckets
from tools.bench._cli import bench_parser, fail, int_list, refusing


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


@refusing
def main(argv):
    args = parse_args(argv)
    positions = caption_positions(args.text_length, args.seed, args.shards, args.captions, args.lengths, args.count)
    result = bucket_report(positions, args.batch, resolve_buckets(args.buckets, args.text_length), args.seed)
    result["source"] = args.shards or args.captions or f"synthetic {args.lengths}: {args.count}"
    return emit(result, args.json)
