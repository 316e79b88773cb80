"""Parameter counts and forward time of encode_image / encode_text per preset (CPU, graph mode).

    python tools/bench_models.py                                   # the three full-size LightCLIP presets
    python tools/bench_models.py --models tiny_resnet18 --batch-size 8 --repeats 2

Each encoder is compiled once (the first call, reported apart), then timed `--repeats` times; the
median is reported. Prints a Markdown table (the one in docs/models.md) and optionally writes JSON.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mindclip  # noqa: F401,E402  (sets the oneDNN cap before mindspore loads)

FULL_SIZE = ["lightclip_resnet18", "lightclip_mobilenetv2", "lightclip_swin_nano"]


def count_parameters(cell, trainable_only=True):
    params = cell.trainable_params() if trainable_only else cell.get_parameters()
    return sum(int(p.size) for p in params)


def time_calls(fn, repeats):
    """(first call wall seconds (compile + run), median wall seconds, median CPU seconds of further calls).

    CPU seconds (all threads of this process) show the cost of a call when other processes share
    the cores and stretch the wall time.
    """
    start = time.perf_counter()
    fn().asnumpy()  # .asnumpy() waits for the result
    first = time.perf_counter() - start
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn().asnumpy()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return first, statistics.median(wall), statistics.median(cpu)


def bench_model(name, batch_size, repeats):
    import numpy as np
    import mindspore as ms
    from mindclip.models import ImageEncoder, TextEncoder, create_model

    ms.set_seed(0)
    model = create_model(name)
    model.set_train(False)
    size = model.visual.image_size
    images = ms.Tensor(np.random.default_rng(0).standard_normal((batch_size, 3, size, size)).astype(np.float32))
    tokens = np.zeros((batch_size, model.text.context_length), np.int32)
    tokens[:, 0], tokens[:, 1:12], tokens[:, 12] = 49406, 320, 49407  # 11 words, full 77-token context
    tokens = ms.Tensor(tokens)
    image_encoder, text_encoder = ImageEncoder(model), TextEncoder(model)
    image_first, image_time, image_cpu = time_calls(lambda: image_encoder(images), repeats)
    text_first, text_time, text_cpu = time_calls(lambda: text_encoder(tokens), repeats)
    return {
        "model": name, "batch_size": batch_size, "image_size": size,
        "params_image": count_parameters(model.visual), "params_text": count_parameters(model.text),
        "params_total": count_parameters(model), "buffers_image": count_parameters(model.visual, False)
        - count_parameters(model.visual),
        "encode_image_s": image_time, "encode_text_s": text_time,
        "encode_image_cpu_s": image_cpu, "encode_text_cpu_s": text_cpu,
        "encode_image_first_call_s": image_first, "encode_text_first_call_s": text_first,
    }


def markdown_table(rows):
    lines = ["| preset | image tower | text tower | total | image buffers (not trained) | encode_image wall (CPU) "
             "| encode_text wall (CPU) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['params_image'] / 1e6:.2f} M | {r['params_text'] / 1e6:.2f} M | "
                     f"{r['params_total'] / 1e6:.2f} M | {r['buffers_image'] / 1e6:.2f} M | "
                     f"{r['encode_image_s']:.2f} s ({r['encode_image_cpu_s']:.2f} s) | "
                     f"{r['encode_text_s']:.2f} s ({r['encode_text_cpu_s']:.2f} s) |")
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=FULL_SIZE, help="presets (default: full-size LightCLIP)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the compiling one")
    parser.add_argument("--device-target", default="CPU")
    parser.add_argument("--output", help="also write the rows as JSON here")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import mindspore as ms

    ms.set_context(mode=ms.GRAPH_MODE, device_target=args.device_target)
    rows = [bench_model(name, args.batch_size, args.repeats) for name in args.models]
    print(markdown_table(rows))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
