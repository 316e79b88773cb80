"""`python -m tools.bench <benchmark> [flags]`; `python -m tools.bench <benchmark> -h` for its flags."""
import importlib
import sys

from tools.bench._cli import fail

BENCHMARKS = {
    "train": "the train step: compile, step time, peak memory, host matcher share, per-piece profile",
    "infer": "inference: parameters, encode_image / encode_text (graph, PyNative, exported), preprocessing",
    "data": "the training pipeline's images/s on synthetic JPEGs",
    "hungarian": "the host Hungarian matcher, alone and as a graph op",
    "ops": "single MindSpore ops on the text tower's shapes",
    "buckets": "how batches fall into text-length buckets",
    "torch_reference": "the same model and step in PyTorch/open_clip (run it with a PyTorch interpreter)",
    "side_by_side": "mindclip's train step against the PyTorch reference on the same batch, one invocation",
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in ([], ["-h"], ["--help"]):
        print("usage: python -m tools.bench <benchmark> [flags]\n"
              + "\n".join(f"  {name:16s} {text}" for name, text in BENCHMARKS.items()))
        return 0 if argv else 2
    if argv[0] not in BENCHMARKS:
        fail(f"unknown benchmark {argv[0]!r}; choose from {', '.join(BENCHMARKS)}")
    importlib.import_module(f"tools.bench.{argv[0]}").main(argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
