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
(those of `tools.bench data`) with `--workers` threads, as tools/eval.py does. Measured by
`mindclip.bench.infer`.
"""
from mindclip.bench.harness import emit
from mindclip.bench.infer import WAYS, infer_bench
from tools.bench._cli import bench_parser, fail, refusing


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


@refusing
def main(argv):
    args = parse_args(argv)
    return emit(infer_bench(args.model, args.ways, args.batches, args.steps, args.warmup, args.seed, args.device_target,
                            args.checkpoint, args.fp16, args.preprocess_images, args.workers), args.json)
