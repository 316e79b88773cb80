"""The train step benchmark: the trainer's own step (`mindclip.train.build_train_step`) timed on fixed
micro-batches, with the host matcher's share, peak memory and, on request, each piece on its own.

`train_bench(model, method, overrides, spec, ...)` builds the RunConfig (`--set` keys the step does
not read are refused by `refused_override` first), feeds `optim.accumulation_steps` synthetic
micro-batches (or the one batch of `spec.npz`) at `optim.lr` and training progress 0.7, and returns one
result dict; `memory_slope` combines runs at several batch sizes (one process each) into GiB per sample.
"""
import numpy as np

from mindclip.bench.harness import PROGRESS, BenchError, peak_rss_gib, select_pieces, time_calls
from mindclip.config import parse_override
from mindclip.data.columns import CAPTION_TOKENS, IMAGE_COLUMNS, TEXT_COLUMNS

HONOURED = ("method", "model.", "loss.", "optim.", "train.device_target", "train.mode", "train.seed",
            "train.amp_level", "train.amp_dtype", "train.loss_scale", "train.init_loss_scale", "train.recompute")
NOT_HONOURED = ("optim.warmup_fraction", "optim.min_lr")  # a schedule: every step gets optim.lr


def refused_override(overrides):
    """The first override (KEY=VALUE) whose key the step does not read, or None."""
    for text in overrides:
        key = parse_override(text)[0]
        if key in NOT_HONOURED or not any(key.startswith(h) if h.endswith(".") else key == h for h in HONOURED):
            return text
    return None


def bench_run_config(model, method, overrides, batch, device_target="CPU", image_size=None):
    """The RunConfig of the benchmark: `model`, `method`, `batch` per micro-batch, then `overrides`."""
    from mindclip.config import load_config
    from mindclip.train.config import RunConfig
    from mindclip.train.errors import RunError
    from mindclip.train.preflight import check_model

    refused = refused_override(overrides)
    if refused:
        raise BenchError(f"override {refused}: the train benchmark cannot honour this key (it feeds fixed synthetic batches "
                         f"at optim.lr; it honours {', '.join(h.rstrip('.') for h in HONOURED)})")
    fixed = [f"method={method}", f"model.name={model}", f"data.batch_size={batch}",
             f"train.device_target={device_target}"]
    if image_size:
        fixed.append(f"model.overrides.image.image_size={image_size}")
    cfg = load_config(RunConfig, None, fixed + list(overrides))
    try:
        check_model(cfg)  # the trainer's own refusal of a model that does not fit the method
    except RunError as error:
        raise BenchError(str(error)) from None
    return cfg


def micro_batches(cfg, spec, image_size):
    """(`optim.accumulation_steps` batches, each {column: Tensor} in the method's order; the spec they follow)."""
    import mindspore as ms

    steps = cfg.optim.accumulation_steps
    if spec.npz:
        if steps != 1:
            raise BenchError(f"batch file {spec.npz} holds one batch: it cannot feed "
                             f"optim.accumulation_steps={steps}")
        arrays, spec = spec.from_npz(cfg.method)
        images = arrays[IMAGE_COLUMNS[cfg.method][0]]
        if images.shape[-1] != image_size:
            raise BenchError(f"batch file {spec.npz}: images of {images.shape[-1]} px, the model takes {image_size}")
        batches = [arrays]
    else:
        rng = np.random.default_rng(spec.seed)
        batches = [spec.synthetic(cfg.method, image_size, rng) for _ in range(steps)]
    return [{c: ms.Tensor(a) for c, a in b.items()} for b in batches], spec


def time_step(step, batches, lr, steps, warmup):
    """Whole-step timing, the last step's outputs and the host matcher's seconds per step and calls."""
    from mindclip.ops.hungarian import MATCH_TIMER

    outputs, matching = [], []

    def call():
        MATCH_TIMER.reset()
        outputs.append(step(lr, PROGRESS, [list(b.values()) for b in batches]))
        matching.append((MATCH_TIMER.seconds, MATCH_TIMER.calls))
        return outputs[-1]

    MATCH_TIMER.enabled = True
    try:
        timing = time_calls(call, steps, warmup)
    finally:
        MATCH_TIMER.enabled = False
    return timing, outputs[-1], float(np.median([s for s, _ in matching[-steps:]])), matching[-1][1]


def time_pieces(names, objective, step, batch, method, steps, warmup):
    """{name: {step_s, compile_s}} with each piece compiled and timed as its own graph."""
    from mindclip.bench.pieces import build_pieces

    pieces = build_pieces(names, objective, step, batch[IMAGE_COLUMNS[method][0]], batch[CAPTION_TOKENS],
                          [batch[c] for c in TEXT_COLUMNS[method][1:]], np.random.default_rng(1))
    rows = {}
    for name, (cell, inputs) in pieces.items():
        timing = time_calls(lambda: cell(*inputs), steps, warmup)
        rows[name] = {"step_s": round(timing.median_s, 4), "compile_s": round(timing.first_s - timing.median_s, 2)}
        print(f"{name:14s} {timing.median_s:8.3f} s   (compile {rows[name]['compile_s']:6.1f} s)", flush=True)
    return rows


def train_bench(model, method, overrides, spec, steps=5, warmup=2, pieces=None, device_target="CPU",
                image_size=None):
    """Build the step of the run config, time it (and `pieces`: "all" or names of STEP_PIECES); the result."""
    cfg = bench_run_config(model, method, overrides, spec.batch, device_target, image_size)
    import mindspore as ms

    from mindclip.bench.pieces import available_pieces
    from mindclip.train import build_train_step
    from mindclip.train.networks import build_objective

    ms.set_context(mode=ms.GRAPH_MODE if cfg.train.mode == "graph" else ms.PYNATIVE_MODE,
                   device_target=cfg.train.device_target)
    ms.set_seed(cfg.train.seed)
    clip, objective = build_objective(cfg)
    names = select_pieces(pieces, available_pieces(objective)) if pieces else []
    step = build_train_step(cfg, objective)
    batches, spec = micro_batches(cfg, spec, clip.config.image.image_size)
    timing, out, match_s, match_calls = time_step(step, batches, cfg.optim.lr, steps, warmup)
    result = {
        "model": model, "method": cfg.method, "batch": spec.batch, "accumulation_steps": len(batches),
        "image_size": clip.config.image.image_size, "text_length": spec.text_length,
        "lengths": "npz" if spec.npz else spec.lengths, "overrides": list(overrides),
        "first_step_s": round(timing.first_s, 2), "compile_s": round(timing.first_s - timing.median_s, 2),
        "step_s_median": round(timing.median_s, 4), "step_s_min": round(timing.min_s, 4),
        "images_per_s": round(spec.batch * len(batches) / timing.median_s, 2),
        "peak_rss_gib": round(peak_rss_gib(), 3), "loss": round(out.loss, 5),
        "parts": dict(zip(objective.part_names, [round(float(v), 5) for v in out.parts])), "finite": out.finite,
        "host_match_s": round(match_s, 4), "host_match_share": round(match_s / timing.median_s, 4),
        "host_match_calls": match_calls,
    }
    if names:
        result["pieces"] = time_pieces(names, objective, step, batches[0], cfg.method, steps, warmup)
    return result


def memory_slope(batches, runs):
    """`runs` (train_bench results at `batches` sizes, one process each: a fresh peak) -> their peaks and
    the least-squares slope in GiB per sample."""
    peaks = [r["peak_rss_gib"] for r in runs]
    first = runs[0]
    return {"model": first["model"], "method": first["method"], "batches": list(batches),
            "text_length": first["text_length"], "overrides": first["overrides"], "peak_rss_gib": peaks,
            "gib_per_sample": round(float(np.polyfit(batches, peaks, 1)[0]), 5),
            "step_s_median": [r["step_s_median"] for r in runs], "runs": runs}
