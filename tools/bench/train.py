"""The train step: compile time, step time, peak memory, the host matcher's share, where the time goes.

    python -m tools.bench train --model lightclip_mobilenetv2 --method lightclip --batch 32 --text-length 32
    python -m tools.bench train --method lightclip --set optim.accumulation_steps=4     # a 4-micro-batch step
    python -m tools.bench train --method clip --batches 16,32 --set train.recompute=all  # GiB per sample
    python -m tools.bench train --method lightclip --pieces all                         # each piece on its own

The trainer's step (`mindclip.train.build_train_step`) on `optim.accumulation_steps` fixed synthetic
micro-batches of `--batch` samples (`mindclip.data.synthetic`) or the one in `--batch-npz`, at
`optim.lr` and training progress 0.7; no data loading (`tools.bench data`). `--set` takes the keys the
step reads (method, model, loss, optim but its schedule, train's device, mode, seed, precision, loss
scale, recompute) and refuses any other. One JSON line: `step_s_median`/`step_s_min` of the whole
optimizer step, `compile_s`, `images_per_s`, `peak_rss_gib` (ru_maxrss after the timed steps), the
last step's `loss` and `parts`, `host_match_s` (seconds per step in the Hungarian op's host function)
and `host_match_share`; with `--pieces`, `pieces` {name: {step_s, compile_s}} (harness.STEP_PIECES).
`--batches` runs one process per batch size: each `peak_rss_gib`, and `gib_per_sample` (least squares).
Measured by `mindclip.bench.train`.
"""
import sys

from mindclip.bench.harness import emit
from mindclip.bench.train import memory_slope, train_bench
from tools.bench._cli import batch_spec, bench_parser, fail, refusing, run_for_json, without_flags


def parse_args(argv):
    p = bench_parser("train", __doc__, ["model", "method", "batch", "batches", "batch_npz", "image_size",
                                        "text_length", "lengths", "steps", "warmup", "pieces", "set", "json",
                                        "device_target", "seed"])
    args = p.parse_args(argv)
    if args.batches and (args.pieces or args.batch_npz):
        fail("--batches runs the whole step at several batch sizes: not with --pieces or --batch-npz")
    if args.batches and len(set(args.batches)) < 2:
        fail(f"--batches {args.batches}: give at least two different batch sizes for a slope")
    args.spec = batch_spec(args, argv, ("--batch", "--text-length", "--lengths", "--seed"))
    return args


def runs_per_batch(args, argv):
    """One subprocess per --batches size (a fresh peak each): their results."""
    base = [sys.executable, "-m", "tools.bench", "train"] + without_flags(argv, ("--batches", "--json"))
    return [run_for_json(base + ["--batch", str(b)], f"train --batch {b}") for b in args.batches]


@refusing
def main(argv):
    args = parse_args(argv)
    if args.batches:
        return emit(memory_slope(args.batches, runs_per_batch(args, argv)), args.json)
    return emit(train_bench(args.model, args.method, args.overrides, args.spec, args.steps, args.warmup, args.pieces,
                            args.device_target, args.image_size), args.json)
