"""Speed of the exported towers against the checkpoint model (graph and PyNative), on this device.

    python tools/bench_export.py --model lightclip_mobilenetv2 --out /tmp/bench_export
    python tools/bench_export.py --model tiny_resnet18 --repeats 3 --json bench.jsonl

For each tower (image, text) and each way of running it:
  exported   the MINDIR file through `nn.GraphCell` (one compile, dynamic batch)
  graph      the model's `encode_image` / `encode_text` in a Cell, GRAPH_MODE (a compile per batch size)
  pynative   the model's `encode_image` / `encode_text` called in PYNATIVE_MODE
it reports latency at batch 1 (median ms over `--repeats` x 5 calls) and throughput at batch 64
(items/s, median over `--repeats` calls), after one untimed warm-up call (the compile), both in wall
time and in process CPU time (all threads; what to read when other processes share the cores). The export
is made first (fp32, verified); `--fp16` also exports fp16 towers and reports their error.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mindclip  # noqa: E402  (sets the oneDNN ISA cap before mindspore loads)
from mindclip._io import append_json_line  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="lightclip_mobilenetv2", help="model preset")
    p.add_argument("--checkpoint", default=None, help="weights (default: random; speed does not depend on them)")
    p.add_argument("--out", default="/tmp/mindclip_bench_export", help="export folder to write")
    p.add_argument("--batch", type=int, default=64, help="throughput batch size")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions")
    p.add_argument("--fp16", action="store_true", help="also export fp16 towers and report their error")
    p.add_argument("--device", default="CPU")
    p.add_argument("--json", default=None, help="append the results as a JSON line to this file")
    return p.parse_args(argv)


def timed(fn, inputs, calls):
    """Median (wall seconds, process CPU seconds) of `calls` calls of fn(inputs), after one untimed call.

    CPU seconds (all threads of this process) hardly depend on other processes sharing the cores,
    wall seconds do: on a busy machine read the CPU figures.
    """
    fn(inputs).asnumpy()
    walls, cpus = [], []
    for _ in range(calls):
        wall, cpu = time.perf_counter(), time.process_time()
        fn(inputs).asnumpy()  # asnumpy: wait for the result
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def bench_runner(fn, inputs, batch, repeats):
    """Latency at batch 1 and throughput at `batch` of one tower runner, in wall and CPU time."""
    import mindspore as ms

    wall_1, cpu_1 = timed(fn, ms.Tensor(inputs[:1]), repeats * 5)
    wall_b, cpu_b = timed(fn, ms.Tensor(inputs[:batch]), repeats)
    return {"latency_ms_b1": 1000 * wall_1, "cpu_ms_b1": 1000 * cpu_1,
            f"throughput_b{batch}": batch / wall_b, f"per_cpu_s_b{batch}": batch / cpu_b}


def runners(model, export_dir, size, length):
    """{(tower, way): (callable, mode)} for the exported files and the checkpoint model."""
    import mindspore as ms

    from mindclip.export import IMAGE_FILE, TEXT_FILE, ImageEncoder, TextEncoder, load_tower

    image_file = load_tower(os.path.join(export_dir, IMAGE_FILE), [None, 3, size, size], ms.float32)
    text_file = load_tower(os.path.join(export_dir, TEXT_FILE), [None, length], ms.int32)
    return {
        ("image", "exported"): (image_file, ms.GRAPH_MODE),
        ("image", "graph"): (ImageEncoder(model), ms.GRAPH_MODE),
        ("image", "pynative"): (model.encode_image, ms.PYNATIVE_MODE),
        ("text", "exported"): (text_file, ms.GRAPH_MODE),
        ("text", "graph"): (TextEncoder(model), ms.GRAPH_MODE),
        ("text", "pynative"): (model.encode_text, ms.PYNATIVE_MODE),
    }


def main(argv=None):
    args = parse_args(argv)
    import mindspore as ms

    from mindclip.export import export_model
    from mindclip.export.mindir import sample_inputs

    ms.set_context(mode=ms.GRAPH_MODE, device_target=args.device)
    model = mindclip.create_model(args.model, checkpoint=args.checkpoint)
    model.set_train(False)
    start = time.perf_counter()
    report = export_model(model, args.out, model_name=args.model)
    result = {"model": args.model, "device": args.device, "export_s": time.perf_counter() - start,
              "fp32_max_abs_diff": report["verification"]["max_abs_diff"], "towers": {}}
    if args.fp16:
        half = export_model(model, args.out + "_fp16", fp16=True, model_name=args.model)["verification"]
        result["fp16"] = {"image": half["image"], "text": half["text"], "max_abs_diff": half["max_abs_diff"]}
    size, length = model.visual.image_size, model.text.context_length
    images, tokens = sample_inputs(size, length, args.batch, seed=0)
    for (tower, way), (fn, mode) in runners(model, args.out, size, length).items():
        ms.set_context(mode=mode)
        figures = bench_runner(fn, images if tower == "image" else tokens, args.batch, args.repeats)
        result["towers"][f"{tower}/{way}"] = figures
        print(f"{tower:5s} {way:9s} latency b1 {figures['latency_ms_b1']:8.1f} ms (cpu {figures['cpu_ms_b1']:8.1f} ms)"
              f"   throughput b{args.batch} {figures[f'throughput_b{args.batch}']:8.1f} /s "
              f"(per cpu-s {figures[f'per_cpu_s_b{args.batch}']:8.1f})", flush=True)
    ms.set_context(mode=ms.GRAPH_MODE)
    print(json.dumps({k: v for k, v in result.items() if k != "towers"}))
    append_json_line(args.json, result)
    return result


if __name__ == "__main__":
    main()
