"""The training pipeline's throughput (images/s, and per CPU-second) on synthetic 500x375 JPEGs.

    python -m tools.bench data --workers 1,2
    python -m tools.bench data --workers 1 --augment none

Writes `--images` photo-like JPEGs (smooth colour fields, noise, rectangles: ~86 KiB each), converts
them with the normal conversion path, then times `create_dataset` (`--image-size`, `--augment`,
tokenisation) over `--steps` batches after the first, for each worker count. `images_per_cpu_s`
(process CPU time, all threads) hardly depends on how busy the machine is. Measured by `mindclip.bench.data`.
"""
from mindclip.bench.data import pipeline_speed
from mindclip.bench.harness import emit
from tools.bench._cli import bench_parser, fail, refusing


@refusing
def main(argv):
    p = bench_parser("data", __doc__, ["batch", "image_size", "steps", "workers", "json", "seed"],
                     image_size=224, steps=8, workers=[1, 2])
    p.add_argument("--images", type=int, default=320, help="JPEGs to write (at least (steps + 1) * batch)")
    p.add_argument("--augment", default="simclr", choices=("none", "simclr"))
    args = p.parse_args(argv)
    if args.images < (args.steps + 1) * args.batch:
        fail(f"--images {args.images}: need at least (steps + 1) * batch = {(args.steps + 1) * args.batch}")
    return emit(pipeline_speed(args.batch, args.image_size, args.augment, args.steps, args.workers, args.images,
                               args.seed), args.json)
