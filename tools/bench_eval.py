"""Throughput of evaluation: images/s of the image tower (graph mode, fixed batch) and of the host
preprocessing (JPEG decode + resize + crop + normalise) that feeds it.

    python tools/bench_eval.py --models lightclip_resnet18 lightclip_mobilenetv2 lightclip_swin_nano \
        --batch-size 256 --iters 3

Random weights (speed does not depend on them); inputs are random tensors for the tower, and
synthetic 500x375 JPEGs for preprocessing. Prints one line per model and a preprocessing line.
"""
import argparse
import concurrent.futures
import io
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mindclip  # noqa: E402,F401  (sets the oneDNN ISA cap before mindspore loads)
import numpy as np  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["lightclip_resnet18", "lightclip_mobilenetv2", "lightclip_swin_nano"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--iters", type=int, default=3, help="timed batches after one warm-up (compile) batch")
    p.add_argument("--device", default=None, choices=("CPU", "GPU", "Ascend"), help="default: MindSpore's")
    p.add_argument("--preprocess-images", type=int, default=256, help="JPEGs for the preprocessing figure; 0 = skip")
    p.add_argument("--workers", type=int, default=2, help="preprocessing threads (as tools/eval.py --workers)")
    return p.parse_args(argv)


def bench_tower(name, batch_size, iters):
    """(compile+first batch seconds, images/s over `iters` batches) of `name`'s image tower."""
    import mindspore as ms

    from mindclip.models import ImageEncoder

    model = mindclip.create_model(name)
    size = model.config.image.image_size
    encoder = ImageEncoder(model)
    encoder.set_train(False)
    images = ms.Tensor(np.random.default_rng(0).normal(size=(batch_size, 3, size, size)).astype(np.float32))
    start = time.perf_counter()
    encoder(images).asnumpy()  # compile + first run
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(iters):
        encoder(images).asnumpy()  # host sync point
    return size, first, batch_size * iters / (time.perf_counter() - start)


def bench_preprocess(count, image_size, workers):
    """images/s of decode + `preprocess_image` on synthetic 500x375 JPEGs with `workers` threads."""
    from PIL import Image

    from mindclip.data.transforms import preprocess_image

    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(8):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)).save(buffer, format="JPEG", quality=90)
        blobs.append(buffer.getvalue())

    def load(i):
        with Image.open(io.BytesIO(blobs[i % len(blobs)])) as image:
            return preprocess_image(image.convert("RGB"), image_size)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(load, range(min(count, 16))))  # warm-up
        start = time.perf_counter()
        list(pool.map(load, range(count)))
        return count / (time.perf_counter() - start)


def main(argv=None):
    args = parse_args(argv)
    import mindspore as ms

    context = {"mode": ms.GRAPH_MODE}
    if args.device:
        context["device_target"] = args.device
    ms.set_context(**context)
    print(f"device {ms.get_context('device_target')}, batch {args.batch_size}, {args.iters} timed batches, "
          f"{os.cpu_count()} CPUs visible")
    figures = {}
    for name in args.models:
        size, first, speed = bench_tower(name, args.batch_size, args.iters)
        figures[name] = speed
        print(f"{name:24s} {size}px  image tower {speed:8.1f} images/s  (compile + first batch {first:.1f} s)")
    if args.preprocess_images:
        speed = bench_preprocess(args.preprocess_images, 224, args.workers)
        figures["preprocess"] = speed
        print(f"{'preprocess 500x375 JPEG':24s} 224px  {speed:8.1f} images/s with {args.workers} threads")
    return figures


if __name__ == "__main__":
    main()
