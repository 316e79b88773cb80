"""The training pipeline's throughput (images/s, and per CPU-second) on synthetic 500x375 JPEGs.

`pipeline_speed` writes photo-like JPEGs (smooth colour fields, noise, rectangles: ~86 KiB each),
converts them with the normal conversion path, then times `create_dataset` (image size, augmentation,
tokenisation) over `steps` batches after the first, for each worker count. `images_per_cpu_s`
(process CPU time, all threads) hardly depends on how busy the machine is.
"""
import io
import os
import tempfile
import time

import numpy as np


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


def measure(shards, workers, batch, image_size, augment, steps):
    """(images/s wall, images per CPU-second) over `steps` batches after the first."""
    from mindclip.data.pipeline import DataConfig, create_dataset

    cfg = DataConfig(train_shards=shards, batch_size=batch, image_size=image_size, augment=augment,
                     num_workers=workers)
    iterator = create_dataset(cfg).create_tuple_iterator(num_epochs=1, output_numpy=True)
    next(iterator)  # start-up and the first batch are not timed
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        next(iterator)
    images = steps * batch
    return images / (time.perf_counter() - wall), images / (time.process_time() - cpu)


def pipeline_speed(batch=32, image_size=224, augment="simclr", steps=8, workers=(1, 2), images=320, seed=0):
    """The result dict: {"workers": {count: {images_per_s, images_per_cpu_s}}, ...} over `images` JPEGs."""
    from mindclip.data.convert import convert_files

    result = {"batch": batch, "image_size": image_size, "augment": augment, "steps": steps,
              "cpus": os.cpu_count(), "workers": {}}
    with tempfile.TemporaryDirectory(prefix="mindclip_bench_data_") as folder:
        write_jpegs(folder, images, np.random.default_rng(seed))
        convert_files(os.path.join(folder, "pairs.csv"), os.path.join(folder, "shards"), progress_every_s=None)
        shards = os.path.join(folder, "shards", "train-*.mindrecord")
        for count in workers:
            per_s, per_cpu_s = measure(shards, count, batch, image_size, augment, steps)
            result["workers"][str(count)] = {"images_per_s": round(per_s, 1), "images_per_cpu_s": round(per_cpu_s, 1)}
    return result
