"""Benchmark the train step: compile time, steady step time, images/s.

    python tools/bench_train.py --model lightclip_mobilenetv2 --method clip --batch 32 --image-size 224
    python tools/bench_train.py --model lightclip_mobilenetv2 --method lightclip --batch 32 \
        --set loss.token_weight=0.1 --set loss.mlm_weight=0

The step is the trainer's own (same objective, AdamW and TrainStep cell), fed with fixed random
batches of the method's columns, so data loading is excluded (see tools/bench_data.py for that).
"""
import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # sibling tools (bench_buckets)

import mindclip  # noqa: E402,F401
from mindclip._io import append_json_line  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="lightclip_mobilenetv2")
    p.add_argument("--method", default="clip", choices=["clip", "lightclip", "pyramidclip"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--image-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--text-length", type=int, default=77, help="token positions fed to the text tower")
    p.add_argument("--lengths", default="uniform", choices=["uniform", "cc3m"],
                   help="synthetic caption lengths: uniform (EOT at 5..L-2) or CC3M-like (median 12 tokens)")
    p.add_argument("--batch-npz", default=None,
                   help="take the batch from this .npz (images, tokens[, mlm_tokens, mlm_positions, mlm_labels]); "
                        "--batch and --text-length then come from its arrays")
    p.add_argument("--steps", type=int, default=5, help="timed steps after the warm-up ones")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after the compiling one")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="RunConfig override, e.g. loss.mlm_weight=0.1")
    p.add_argument("--json", default=None, help="append the result as a JSON line to this file")
    return p.parse_args(argv)


def bench_config(args):
    from mindclip.train.config import RunConfig
    from mindclip.config import load_config

    overrides = [f"method={args.method}", f"model.name={args.model}", f"data.batch_size={args.batch}"]
    if args.method == "lightclip":
        overrides += ["loss.inst_weight=0.8", "loss.token_weight=0.1", "loss.mlm_weight=0.1",
                      "loss.r1=0.33", "loss.r2=0.66"]
    if args.image_size:
        overrides.append(f"model.overrides={{image.image_size: {args.image_size}}}")
    return load_config(RunConfig, None, overrides + list(args.overrides), base={})


BATCH_COLUMNS = {"clip": ("images", "tokens"), "pyramidclip": ("images", "tokens"),
                 "lightclip": ("images", "tokens", "mlm_tokens", "mlm_positions", "mlm_labels")}


def synthetic_arrays(method, image_size, batch, length, rng, lengths="uniform"):
    """Fixed random inputs with the method's batch columns (docs/architecture.md), as numpy arrays.

    lengths="uniform": the EOT of each caption at a uniform position in 5..length-2; "cc3m": BPE
    word counts from a log-normal with median 12 (about CC3M's caption lengths), cut to fit.
    """
    import numpy as np

    from bench_buckets import cc3m_token_counts
    from mindclip.data import compact_mlm_labels, mask_tokens, mlm_max_predictions

    images = rng.standard_normal((batch, 3, image_size, image_size)).astype(np.float32)
    tokens = np.zeros((batch, length), np.int32)
    for i in range(batch):
        if lengths == "cc3m":
            n = int(cc3m_token_counts(rng, 1, length)[0]) + 1  # the EOT position
        else:
            n = int(rng.integers(5, length - 1))
        tokens[i, 0] = 49406
        tokens[i, 1:n] = rng.integers(1, 49405, n - 1)
        tokens[i, n] = 49407
    columns = [images, tokens]
    if method == "lightclip":
        masked, labels = mask_tokens(tokens, rng)
        positions, labels_k = compact_mlm_labels(labels, mlm_max_predictions(length))
        columns += [masked, positions, labels_k]
    return dict(zip(BATCH_COLUMNS[method], columns))


def synthetic_batch(method, clip, batch, length, rng, lengths="uniform"):
    """`synthetic_arrays` for the model's image size, as Tensors in column order."""
    import mindspore as ms

    arrays = synthetic_arrays(method, clip.config.image.image_size, batch, length, rng, lengths)
    return [ms.Tensor(a) for a in arrays.values()]


def load_batch(path, method):
    """The method's columns from an .npz written by tools/bench_side_by_side.py, as Tensors."""
    import mindspore as ms
    import numpy as np

    with np.load(path) as data:
        missing = [c for c in BATCH_COLUMNS[method] if c not in data]
        if missing:
            raise SystemExit(f"{path}: no {missing} array for method {method}")
        return [ms.Tensor(data[c]) for c in BATCH_COLUMNS[method]]


def main(argv=None):
    args = parse_args(argv)
    import mindspore as ms
    import numpy as np

    from mindclip.train.networks import build_objective
    from mindclip.train.step import TrainStep
    from mindclip.train.trainer import build_optimizer

    cfg = bench_config(args)
    ms.set_context(mode=ms.GRAPH_MODE, device_target=cfg.train.device_target)
    ms.set_seed(0)
    clip, objective = build_objective(cfg)
    net = objective.model
    if cfg.train.amp_level != "O0":
        ms.amp.auto_mixed_precision(net, cfg.train.amp_level)
    net.set_train(True)
    optimizer = build_optimizer(cfg.optim, net)
    step = TrainStep(objective, optimizer, clip.logit_scale, loss_scale=cfg.train.loss_scale)
    if args.batch_npz:
        batch = load_batch(args.batch_npz, cfg.method)
        args.batch, args.text_length = batch[1].shape
    else:
        batch = synthetic_batch(cfg.method, clip, args.batch, args.text_length, np.random.default_rng(0), args.lengths)
    lr, progress, update = ms.Tensor(1e-4, ms.float32), ms.Tensor(0.7, ms.float32), ms.Tensor(True)

    t0 = time.perf_counter()
    out = step(lr, progress, update, *batch)
    out[0].asnumpy()
    first = time.perf_counter() - t0
    for _ in range(args.warmup):
        step(lr, progress, update, *batch)[0].asnumpy()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        out = step(lr, progress, update, *batch)
        out[0].asnumpy()  # host sync point
        times.append(time.perf_counter() - t0)
    times = np.array(times)
    result = {
        "model": args.model, "method": cfg.method, "batch": args.batch,
        "image_size": clip.config.image.image_size, "text_length": args.text_length,
        "lengths": "npz" if args.batch_npz else args.lengths,
        "overrides": args.overrides, "amp_level": cfg.train.amp_level,
        "first_step_s": round(first, 2), "compile_s": round(first - float(np.median(times)), 2),
        "step_s_median": round(float(np.median(times)), 3), "step_s_min": round(float(times.min()), 3),
        "images_per_s": round(args.batch / float(np.median(times)), 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
        "parts": dict(zip(objective.part_names, [round(float(v), 4) for v in out[1].asnumpy()])),
    }
    print(json.dumps(result))
    append_json_line(args.json, result)
    return result


if __name__ == "__main__":
    main()
