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
"""
import sys

import numpy as np

from mindclip.config import ConfigError, parse_override
from mindclip.data.columns import BATCH_COLUMNS, CAPTION_TOKENS, IMAGE_COLUMNS, TEXT_COLUMNS
from mindclip.data.synthetic import synthetic_arrays
from tools.bench.harness import (PROGRESS, STEP_PIECES, bench_parser, emit, fail, load_npz_batch, parse_pieces,
                                 peak_rss_gib, run_for_json, time_calls, without_flags)

HONOURED = ("method", "model.", "loss.", "optim.", "train.device_target", "train.mode", "train.seed",
            "train.amp_level", "train.amp_dtype", "train.loss_scale", "train.init_loss_scale", "train.recompute")
NOT_HONOURED = ("optim.warmup_fraction", "optim.min_lr")  # a schedule: every step gets optim.lr


def parse_args(argv):
    p = bench_parser("train", __doc__, ["model", "method", "batch", "batches", "image_size", "text_length",
                                        "lengths", "steps", "warmup", "set", "json", "device_target", "seed"])
    p.add_argument("--batch-npz", default=None,
                   help="take the batch from this .npz (the method's columns): it sets batch size and text length")
    p.add_argument("--pieces", default=None, help="also time pieces of the step: all, or some of "
                   + ", ".join(STEP_PIECES))
    args = p.parse_args(argv)
    if args.batches and (args.pieces or args.batch_npz):
        fail("--batches runs the whole step at several batch sizes: not with --pieces or --batch-npz")
    given = {a.split("=")[0] for a in argv} & {"--batch", "--text-length", "--lengths", "--seed"}
    if args.batch_npz and given:
        fail(f"--batch-npz holds the batch: {', '.join(sorted(given))} would be ignored")
    if args.batches and len(set(args.batches)) < 2:
        fail(f"--batches {args.batches}: give at least two different batch sizes for a slope")
    return args


def honoured(key):
    return key not in NOT_HONOURED and any(key.startswith(h) if h.endswith(".") else key == h for h in HONOURED)


def run_config(args):
    """The RunConfig of the benchmark; a `--set` key the step does not read is refused."""
    from mindclip.config import load_config
    from mindclip.train.config import RunConfig

    try:
        for text in args.overrides:
            if not honoured(parse_override(text)[0]):
                fail(f"--set {text}: the train benchmark cannot honour this key (it feeds fixed synthetic batches "
                     f"at optim.lr; it honours {', '.join(h.rstrip('.') for h in HONOURED)})")
        overrides = [f"method={args.method}", f"model.name={args.model}", f"data.batch_size={args.batch}",
                     f"train.device_target={args.device_target}"]
        if args.image_size:
            overrides.append(f"model.overrides.image.image_size={args.image_size}")
        return load_config(RunConfig, None, overrides + args.overrides)
    except ConfigError as e:
        fail(str(e))


def micro_batches(args, cfg, image_size):
    """`optim.accumulation_steps` batches, each a dict column name -> Tensor in the method's order."""
    import mindspore as ms

    steps = cfg.optim.accumulation_steps
    if args.batch_npz:
        if steps != 1:
            fail(f"--batch-npz holds one batch: it cannot feed optim.accumulation_steps={steps}")
        columns = BATCH_COLUMNS[cfg.method]
        arrays = load_npz_batch(args.batch_npz, columns)
        if arrays[0].shape[-1] != image_size:
            fail(f"--batch-npz {args.batch_npz}: images of {arrays[0].shape[-1]} px, the model takes {image_size} "
                 f"(--image-size)")
        args.batch, args.text_length = arrays[columns.index(CAPTION_TOKENS)].shape
        return [{c: ms.Tensor(a) for c, a in zip(columns, arrays)}]
    rng = np.random.default_rng(args.seed)
    return [{c: ms.Tensor(a) for c, a in synthetic_arrays(cfg.method, image_size, args.batch, args.text_length, rng,
                                                          args.lengths).items()} for _ in range(steps)]


def time_step(step, batches, args, lr):
    """Whole-step timing, the last step's outputs and the host matcher's seconds per step."""
    from mindclip.ops.hungarian import MATCH_TIMER

    outputs, matching = [], []

    def call():
        MATCH_TIMER.reset()
        outputs.append(step(lr, PROGRESS, [list(b.values()) for b in batches]))
        matching.append((MATCH_TIMER.seconds, MATCH_TIMER.calls))
        return outputs[-1]

    MATCH_TIMER.enabled = True
    try:
        timing = time_calls(call, args.steps, args.warmup)
    finally:
        MATCH_TIMER.enabled = False
    return timing, outputs[-1], float(np.median([s for s, _ in matching[-args.steps:]])), matching[-1][1]


def time_pieces(names, objective, step, batch, method, args):
    """{name: {step_s, compile_s}} with each piece compiled and timed as its own graph."""
    from tools.bench.pieces import build_pieces

    pieces = build_pieces(names, objective, step, batch[IMAGE_COLUMNS[method][0]], batch[CAPTION_TOKENS],
                          [batch[c] for c in TEXT_COLUMNS[method][1:]], np.random.default_rng(1))
    rows = {}
    for name, (cell, inputs) in pieces.items():
        timing = time_calls(lambda: cell(*inputs), args.steps, args.warmup)
        rows[name] = {"step_s": round(timing.median_s, 4), "compile_s": round(timing.first_s - timing.median_s, 2)}
        print(f"{name:14s} {timing.median_s:8.3f} s   (compile {rows[name]['compile_s']:6.1f} s)", flush=True)
    return rows


def run_step(args):
    """Build the step of the run config, time it (and its pieces); the result dict."""
    cfg = run_config(args)
    import mindspore as ms

    from mindclip.train import build_train_step
    from mindclip.train.networks import build_objective
    from tools.bench.pieces import available_pieces

    ms.set_context(mode=ms.GRAPH_MODE if cfg.train.mode == "graph" else ms.PYNATIVE_MODE,
                   device_target=cfg.train.device_target)
    ms.set_seed(cfg.train.seed)
    clip, objective = build_objective(cfg)
    pieces = parse_pieces(args.pieces, available_pieces(objective)) if args.pieces else []
    step = build_train_step(cfg, objective)
    batches = micro_batches(args, cfg, clip.config.image.image_size)
    timing, out, match_s, match_calls = time_step(step, batches, args, cfg.optim.lr)
    samples = args.batch * len(batches)
    result = {
        "model": args.model, "method": cfg.method, "batch": args.batch, "accumulation_steps": len(batches),
        "image_size": clip.config.image.image_size, "text_length": args.text_length,
        "lengths": "npz" if args.batch_npz else args.lengths, "overrides": args.overrides,
        "first_step_s": round(timing.first_s, 2), "compile_s": round(timing.first_s - timing.median_s, 2),
        "step_s_median": round(timing.median_s, 4), "step_s_min": round(timing.min_s, 4),
        "images_per_s": round(samples / timing.median_s, 2), "peak_rss_gib": round(peak_rss_gib(), 3),
        "loss": round(out.loss, 5), "parts": dict(zip(objective.part_names, [round(float(v), 5) for v in out.parts])),
        "finite": out.finite, "host_match_s": round(match_s, 4), "host_match_share": round(match_s / timing.median_s, 4),
        "host_match_calls": match_calls,
    }
    if pieces:
        result["pieces"] = time_pieces(pieces, objective, step, batches[0], cfg.method, args)
    return result


def memory_slope(args, argv):
    """One subprocess per batch size (a fresh peak each); the peaks and their slope in GiB per sample."""
    base = [sys.executable, "-m", "tools.bench", "train"] + without_flags(argv, ("--batches", "--json"))
    runs = [run_for_json(base + ["--batch", str(b)], f"train --batch {b}") for b in args.batches]
    peaks = [r["peak_rss_gib"] for r in runs]
    slope = float(np.polyfit(args.batches, peaks, 1)[0])
    return {"model": args.model, "method": runs[0]["method"], "batches": args.batches,
            "text_length": args.text_length, "overrides": args.overrides, "peak_rss_gib": peaks,
            "gib_per_sample": round(slope, 5), "step_s_median": [r["step_s_median"] for r in runs], "runs": runs}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    return emit(memory_slope(args, argv) if args.batches else run_step(args), args.json)
