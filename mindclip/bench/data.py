"""The training pipeline's throughput (images/s, and per CPU-second) on synthetic 500x375 JPEGs.

    python -m tools.bench data --workers 1,2
    python -m tools.bench data --workers 1 --augment none

Writes `--images` photo-like JPEGs (smooth colour fields, noise, rectangles: ~86 KiB each), converts
them with the normal conversion path, then times `create_dataset` (`--image-size`, `--augment`,
tokenisation) over `--steps` batches after the first, for each worker count. `images_per_cpu_s`
(process CPU time, all threads) hardly depends on how busy the machine is.
"""
import io
import os
import tempfile
import time

import numpy as np

from tools.bench.harness import bench_parser, emit, fail


def parse_args(argv):
    p = bench_parser("data", __doc__, ["batch", "image_size", "steps", "workers", "json", "seed"],
                     image_size=224, steps=8, workers=[1, 2])
    p.add_argument("--images", type=int, default=320, help="JPEGs to write (at least (steps + 1) * batch)")
    p.add_argument("--augment", default="simclr", choices=("none", "simclr"))
    args = p.parse_args(argv)
    if args.images < (args.steps + 1) * args.batch:
        fail(f"--images {args.images}: need at least (steps + 1) * batch = {(args.steps + 1) * args.batch}")
    return args


def photo_like_jpeg(rng, width=500, height=375):
    """JPEG bytes (quality 90, ~86 KiB at 500x375) of a smooth colour field with noise and rectangles."""
    from PIL import Image

    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    a, b, c = rng.uniform(0, 6, 3)
    image = np.stack([np.sin(a * xx + b * yy + c * k) for k in range(3)], -1) * 80 + 128
    image += rng.normal(0, 20, image.shape)
    for _ in range(4):
        x0, y0 = rng.integers(0, width - 50), rng.integers(0, height - 50)
        image[y0:y0 + rng.integers(20, 120), x0:x0 + rng.integers(20, 160)] = rng.uniform(0, 255, 3)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def write_jpegs(folder, n, rng):
    """n photo-like JPEGs and a captions CSV (filepath, title) beside them."""
    lines = ["filepath\ttitle"]
    for i in range(n):
        with open(os.path.join(folder, f"{i:05d}.jpg"), "wb") as f:
            f.write(photo_like_jpeg(rng))
        lines.append(f"{i:05d}.jpg\ta photo of object number {i} on a table next to a window")
    with open(os.path.join(folder, "pairs.csv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def measure(shards, workers, args):
    """(images/s wall, images per CPU-second) over `args.steps` batches after the first."""
    from mindclip.data.pipeline import DataConfig, create_dataset

    cfg = DataConfig(train_shards=shards, batch_size=args.batch, image_size=args.image_size, augment=args.augment,
                     num_workers=workers)
    iterator = create_dataset(cfg).create_tuple_iterator(num_epochs=1, output_numpy=True)
    next(iterator)  # start-up and the first batch are not timed
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        next(iterator)
    images = args.steps * args.batch
    return images / (time.perf_counter() - wall), images / (time.process_time() - cpu)


def main(argv=None):
    args = parse_args(argv)
    from mindclip.data.convert import convert_files

    result = {"batch": args.batch, "image_size": args.image_size, "augment": args.augment, "steps": args.steps,
              "cpus": os.cpu_count(), "workers": {}}
    with tempfile.TemporaryDirectory(prefix="mindclip_bench_data_") as folder:
        write_jpegs(folder, args.images, np.random.default_rng(args.seed))
        convert_files(os.path.join(folder, "pairs.csv"), os.path.join(folder, "shards"), progress_every_s=None)
        for workers in args.workers:
            per_s, per_cpu_s = measure(os.path.join(folder, "shards", "train-*.mindrecord"), workers, args)
            result["workers"][str(workers)] = {"images_per_s": round(per_s, 1), "images_per_cpu_s": round(per_cpu_s, 1)}
    return emit(result, args.json)
