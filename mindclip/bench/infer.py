"""Inference: parameter counts, encode_image / encode_text per batch size in graph mode, in PyNative
and from the exported MINDIR towers, and the host preprocessing that feeds evaluation.

    python -m tools.bench infer --model lightclip_mobilenetv2 --batches 1,64 --ways graph,pynative,exported
    python -m tools.bench infer --model lightclip_resnet18 --batches 256 --preprocess-images 256
    python -m tools.bench infer --model tiny_resnet18 --ways exported --fp16 --batches 8     # fp16 export error

Random weights unless `--checkpoint` (speed does not depend on them). Each tower, way and batch size
is timed after its first call (the compile, reported apart as `first_s`): `wall_ms` and `cpu_ms`
(process CPU time, all threads: what to read when other processes share the cores) are medians of
`--steps` calls, `items_per_s` = batch / wall. `exported` exports both towers first (verified against
the model; `export` holds the verification, `--fp16` adds float16 towers and their error).
`--preprocess-images N` times JPEG decode + resize + crop + normalise of N photo-like 500x375 JPEGs
(those of `tools.bench data`) with `--workers` threads, as tools/eval.py does.
"""
import concurrent.futures
import io
import os
import tempfile
import time

import numpy as np

from mindclip.data.synthetic import synthetic_tokens
from tools.bench.harness import bench_parser, emit, fail, time_calls

WAYS = ("graph", "pynative", "exported")


def parse_args(argv):
    p = bench_parser("infer", __doc__, ["model", "batches", "steps", "warmup", "json", "device_target", "seed",
                                        "workers"], batches=[1, 32], steps=3, warmup=1)
    p.add_argument("--ways", default="graph", help="comma-separated: " + ", ".join(WAYS))
    p.add_argument("--checkpoint", default=None, help="weights (default: random)")
    p.add_argument("--fp16", action="store_true", help="with exported: also export float16 towers, report the error")
    p.add_argument("--preprocess-images", type=int, default=0, help="JPEGs to preprocess and time; 0 = skip")
    args = p.parse_args(argv)
    args.ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    unknown = [w for w in args.ways if w not in WAYS]
    if unknown or not args.ways:
        fail(f"--ways: unknown {unknown or 'empty'}; choose from {', '.join(WAYS)}")
    if args.fp16 and "exported" not in args.ways:
        fail("--fp16 reports the float16 export's error: add exported to --ways")
    return args


def count_parameters(cell, trainable_only=True):
    return sum(int(p.size) for p in (cell.trainable_params() if trainable_only else cell.get_parameters()))


def runners(model, ways, export_dir):
    """{(tower, way): (callable, mode)} for the requested ways."""
    import mindspore as ms

    from mindclip.export import IMAGE_FILE, TEXT_FILE, ImageEncoder, TextEncoder, load_tower

    size, length = model.visual.image_size, model.text.context_length
    build = {
        "graph": lambda: (ImageEncoder(model), TextEncoder(model), ms.GRAPH_MODE),
        "pynative": lambda: (model.encode_image, model.encode_text, ms.PYNATIVE_MODE),
        "exported": lambda: (load_tower(os.path.join(export_dir, IMAGE_FILE), [None, 3, size, size], ms.float32),
                             load_tower(os.path.join(export_dir, TEXT_FILE), [None, length], ms.int32), ms.GRAPH_MODE),
    }
    out = {}
    for way in ways:
        image, text, mode = build[way]()
        out[("image", way)], out[("text", way)] = (image, mode), (text, mode)
    return out


def time_towers(model, args, export_dir):
    """{"image/graph/b32": {first_s, wall_ms, cpu_ms, items_per_s}, ...}"""
    import mindspore as ms

    rng = np.random.default_rng(args.seed)
    size, rows = model.visual.image_size, max(args.batches)
    inputs = {"image": rng.standard_normal((rows, 3, size, size)).astype(np.float32),
              "text": synthetic_tokens(rng, rows, model.text.context_length)}
    out = {}
    for (tower, way), (fn, mode) in runners(model, args.ways, export_dir).items():
        ms.set_context(mode=mode)
        for batch in args.batches:
            x = ms.Tensor(inputs[tower][:batch])
            t = time_calls(lambda: fn(x), args.steps, args.warmup)
            out[f"{tower}/{way}/b{batch}"] = {"first_s": round(t.first_s, 3), "wall_ms": round(1000 * t.median_s, 2),
                                              "cpu_ms": round(1000 * t.cpu_median_s, 2),
                                              "items_per_s": round(batch / t.median_s, 1)}
            print(f"{tower:5s} {way:9s} b{batch:<4d} {out[f'{tower}/{way}/b{batch}']}", flush=True)
    ms.set_context(mode=ms.GRAPH_MODE)
    return out


def export(model, args, export_dir):
    from mindclip.export import export_model

    start = time.perf_counter()
    report = {"fp32": export_model(model, os.path.join(export_dir, "fp32"), model_name=args.model)["verification"],
              "export_s": round(time.perf_counter() - start, 2)}
    if args.fp16:
        report["fp16"] = export_model(model, os.path.join(export_dir, "fp16"), fp16=True, model_name=args.model)["verification"]
    return report


def preprocess_speed(count, image_size, workers):
    """images/s of decode + `preprocess_image` on photo-like 500x375 JPEGs with `workers` threads."""
    from PIL import Image

    from mindclip.data.transforms import preprocess_image
    from tools.bench.data import photo_like_jpeg

    rng = np.random.default_rng(0)
    blobs = [photo_like_jpeg(rng) for _ in range(8)]

    def load(i):
        with Image.open(io.BytesIO(blobs[i % len(blobs)])) as image:
            return preprocess_image(image.convert("RGB"), image_size)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(load, range(min(count, 16))))  # warm-up
        start = time.perf_counter()
        list(pool.map(load, range(count)))
        return round(count / (time.perf_counter() - start), 1)


def main(argv=None):
    args = parse_args(argv)
    import mindspore as ms

    import mindclip

    ms.set_context(mode=ms.GRAPH_MODE, device_target=args.device_target)
    ms.set_seed(0)
    model = mindclip.create_model(args.model, checkpoint=args.checkpoint)
    model.set_train(False)
    result = {"model": args.model, "device_target": args.device_target, "image_size": model.visual.image_size,
              "text_length": model.text.context_length, "params_image": count_parameters(model.visual),
              "params_text": count_parameters(model.text), "params_total": count_parameters(model),
              "buffers_image": count_parameters(model.visual, False) - count_parameters(model.visual)}
    with tempfile.TemporaryDirectory(prefix="mindclip_bench_export_") as export_dir:
        if "exported" in args.ways:
            result["export"] = export(model, args, export_dir)
        result["towers"] = time_towers(model, args, os.path.join(export_dir, "fp32"))
    if args.preprocess_images:  # {threads: images/s}
        result["preprocess_images_per_s"] = {str(w): preprocess_speed(args.preprocess_images, result["image_size"], w)
                                             for w in args.workers}
    return emit(result, args.json)
