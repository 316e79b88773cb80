"""The inference benchmark: parameter counts, encode_image / encode_text per batch size in graph mode,
in PyNative and from the exported MINDIR towers, and the host preprocessing that feeds evaluation.

Each tower, way and batch size is timed after its first call (the compile, reported apart as
`first_s`): `wall_ms` and `cpu_ms` (process CPU time, all threads) are medians, `items_per_s` =
batch / wall. `exported` exports both towers first (verified against the model: `export` holds the
verification; `fp16` adds float16 towers and their error). `preprocess_speed` times JPEG decode +
resize + crop + normalise of photo-like 500x375 JPEGs (those of the data benchmark) as tools/eval.py does.
"""
import concurrent.futures
import io
import os
import tempfile
import time

import numpy as np

from mindclip.bench.harness import time_calls
from mindclip.data.synthetic import synthetic_tokens

WAYS = ("graph", "pynative", "exported")


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


def time_towers(model, ways, batches, steps, warmup, seed, export_dir):
    """{"image/graph/b32": {first_s, wall_ms, cpu_ms, items_per_s}, ...}"""
    import mindspore as ms

    rng = np.random.default_rng(seed)
    size, rows = model.visual.image_size, max(batches)
    inputs = {"image": rng.standard_normal((rows, 3, size, size)).astype(np.float32),
              "text": synthetic_tokens(rng, rows, model.text.context_length)}
    out = {}
    for (tower, way), (fn, mode) in runners(model, ways, export_dir).items():
        ms.set_context(mode=mode)
        for batch in batches:
            x = ms.Tensor(inputs[tower][:batch])
            t = time_calls(lambda: fn(x), steps, warmup)
            out[f"{tower}/{way}/b{batch}"] = {"first_s": round(t.first_s, 3), "wall_ms": round(1000 * t.median_s, 2),
                                              "cpu_ms": round(1000 * t.cpu_median_s, 2),
                                              "items_per_s": round(batch / t.median_s, 1)}
            print(f"{tower:5s} {way:9s} b{batch:<4d} {out[f'{tower}/{way}/b{batch}']}", flush=True)
    ms.set_context(mode=ms.GRAPH_MODE)
    return out


def export(model, model_name, fp16, export_dir):
    """Export (and verify) fp32 towers under export_dir/fp32, with `fp16` also float16 ones: the reports."""
    from mindclip.export import export_model

    start = time.perf_counter()
    report = {"fp32": export_model(model, os.path.join(export_dir, "fp32"), model_name=model_name)["verification"],
              "export_s": round(time.perf_counter() - start, 2)}
    if fp16:
        report["fp16"] = export_model(model, os.path.join(export_dir, "fp16"), fp16=True,
                                      model_name=model_name)["verification"]
    return report


def preprocess_speed(count, image_size, workers):
    """images/s of decode + `preprocess_image` on photo-like 500x375 JPEGs with `workers` threads."""
    from PIL import Image

    from mindclip.bench.data import photo_like_jpeg
    from mindclip.data.transforms import preprocess_image

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


def infer_bench(model_name, ways=("graph",), batches=(1, 32), steps=3, warmup=1, seed=0, device_target="CPU",
                checkpoint=None, fp16=False, preprocess_images=0, workers=(2,)):
    """The result dict: parameter counts, `export` (with "exported" in `ways`), `towers` (time_towers) and,
    with `preprocess_images` > 0, `preprocess_images_per_s` {threads: images/s} for each of `workers`."""
    import mindspore as ms

    import mindclip

    ms.set_context(mode=ms.GRAPH_MODE, device_target=device_target)
    ms.set_seed(0)
    model = mindclip.create_model(model_name, checkpoint=checkpoint)
    model.set_train(False)
    result = {"model": model_name, "device_target": device_target, "image_size": model.visual.image_size,
              "text_length": model.text.context_length, "params_image": count_parameters(model.visual),
              "params_text": count_parameters(model.text), "params_total": count_parameters(model),
              "buffers_image": count_parameters(model.visual, False) - count_parameters(model.visual)}
    with tempfile.TemporaryDirectory(prefix="mindclip_bench_export_") as export_dir:
        if "exported" in ways:
            result["export"] = export(model, model_name, fp16, export_dir)
        result["towers"] = time_towers(model, ways, batches, steps, warmup, seed, os.path.join(export_dir, "fp32"))
    if preprocess_images:
        result["preprocess_images_per_s"] = {str(w): preprocess_speed(preprocess_images, result["image_size"], w)
                                             for w in workers}
    return result
