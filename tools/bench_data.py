"""Measure the training pipeline's throughput (images/s, and per CPU core) on 500x375 JPEGs.

Writes `--n-images` synthetic photo-like JPEGs of 500x375, converts them with the normal
conversion path, then times `create_dataset` (224x224, the "simclr" recipe, tokenisation) for each
worker count. "per core" = images per CPU-second used by the process (all threads), which does
not depend on how busy the machine is.

    python tools/bench_data.py --workers 1 2
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mindclip  # noqa: E402,F401  (sets the environment before mindspore loads)
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from mindclip.data.convert import convert_files  # noqa: E402
from mindclip.data.pipeline import DataConfig, create_dataset  # noqa: E402


def write_jpegs(folder, n, rng, width=500, height=375):
    """Smooth colour fields with noise and a few rectangles: JPEGs of a realistic size (~86 KiB)."""
    lines = ["filepath\ttitle"]
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    for i in range(n):
        a, b, c = rng.uniform(0, 6, 3)
        base = np.stack([np.sin(a * xx + b * yy + c * k) for k in range(3)], -1) * 80 + 128
        image = base + rng.normal(0, 20, base.shape)
        for _ in range(4):
            x0, y0 = rng.integers(0, width - 50), rng.integers(0, height - 50)
            image[y0:y0 + rng.integers(20, 120), x0:x0 + rng.integers(20, 160)] = rng.uniform(0, 255, 3)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(os.path.join(folder, f"{i:05d}.jpg"), quality=90)
        lines.append(f"{i:05d}.jpg\ta photo of object number {i} on a table next to a window")
    with open(os.path.join(folder, "pairs.csv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def measure(shards, workers, batch_size, batches, image_size, augment):
    """-> (images/s wall, images per CPU-second)."""
    cfg = DataConfig(train_shards=shards, batch_size=batch_size, image_size=image_size, augment=augment,
                     num_workers=workers)
    iterator = create_dataset(cfg).create_tuple_iterator(num_epochs=1, output_numpy=True)
    next(iterator)  # start-up and the first batch are not timed
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(iterator)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    images = batches * batch_size
    return images / wall, images / cpu


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to measure")
    p.add_argument("--n-images", type=int, default=320, help="JPEGs to generate")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=8, help="timed batches per measurement")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--augment", default="simclr", choices=["none", "simclr"])
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    needed = (args.batches + 1) * args.batch_size
    if needed > args.n_images:
        raise SystemExit(f"--n-images must be at least (batches + 1) * batch_size = {needed}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_data_") as folder:
        write_jpegs(folder, args.n_images, np.random.default_rng(args.seed))
        convert_files(os.path.join(folder, "pairs.csv"), os.path.join(folder, "shards"), progress_every_s=None)
        shards = os.path.join(folder, "shards", "train-*.mindrecord")
        for workers in args.workers:
            per_s, per_core = measure(shards, workers, args.batch_size, args.batches, args.image_size, args.augment)
            results[workers] = (per_s, per_core)
            print(f"workers {workers}: {per_s:.0f} images/s, {per_core:.0f} images per CPU-second "
                  f"({args.image_size}x{args.image_size}, {args.augment}, 500x375 JPEGs, {os.cpu_count()} CPUs)")
    return results


if __name__ == "__main__":
    main()
