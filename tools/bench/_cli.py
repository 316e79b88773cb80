"""The benchmarks' command line: one flag vocabulary (a concept has one flag, with one meaning, everywhere),
argparse types, one-line errors (exit status 2), and a benchmark run as a subprocess for its JSON line.
The measuring is `mindclip.bench`; this module needs only NumPy (the PyTorch interpreter imports it)."""
import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile

from mindclip.bench.harness import STEP_PIECES, BatchSpec, BenchError
from mindclip.config import ConfigError
from mindclip.data.columns import METHODS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fail(message):
    """A one-line error on stderr and exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def refusing(main):
    """`main(argv)` whose BenchError or ConfigError (bad input) becomes a one-line error, exit status 2."""
    @functools.wraps(main)
    def checked(argv=None):
        try:
            return main(sys.argv[1:] if argv is None else list(argv))
        except (BenchError, ConfigError) as e:
            fail(str(e))
    return checked


def int_list(text):
    """An argparse type: "16,32" -> [16, 32], positive integers."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give positive integers, e.g. 16,32")
    return values


def at_least(minimum):
    """An argparse type: an integer >= minimum."""
    def parse(text):
        if not text.lstrip("-").isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be an integer >= {minimum}")
        return int(text)
    return parse


FLAGS = {  # name -> (flag, argparse keywords); a benchmark picks the ones it honours
    "model": ("--model", dict(default="lightclip_mobilenetv2", help="model preset (mindclip.list_models())")),
    "method": ("--method", dict(default="clip", choices=METHODS)),
    "batch": ("--batch", dict(type=at_least(1), default=32, help="samples per batch (per micro-batch)")),
    "batches": ("--batches", dict(type=int_list, default=None, help="several batch sizes, e.g. 16,32")),
    "batch_npz": ("--batch-npz", dict(default=None, help="take the batch from this .npz (the method's columns): "
                                      "its shapes set batch size and text length (torch_reference: image size too)")),
    "image_size": ("--image-size", dict(type=at_least(1), default=None, help="default: the preset's")),
    "text_length": ("--text-length", dict(type=at_least(3), default=77, help="token positions per caption row")),
    "lengths": ("--lengths", dict(default="uniform", choices=("uniform", "cc3m"),
                                  help="caption lengths: uniform (EOT at 5..L-2) or CC3M-like (median 12 tokens)")),
    "steps": ("--steps", dict(type=at_least(1), default=5, help="timed calls")),
    "warmup": ("--warmup", dict(type=at_least(0), default=2, help="untimed calls after the first (compiling) one")),
    "pieces": ("--pieces", dict(default=None, help="also time pieces of the step: all, or some of "
                                + ", ".join(STEP_PIECES))),
    "set": ("--set", dict(dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                          help="RunConfig override, e.g. loss.mlm_weight=0 (repeatable)")),
    "json": ("--json", dict(default=None, help="append the result as one JSON line to this file")),
    "device_target": ("--device-target", dict(default="CPU", choices=("CPU", "GPU", "Ascend"))),
    "workers": ("--workers", dict(type=int_list, default=[2], help="worker (thread) counts, e.g. 1,2")),
    "seed": ("--seed", dict(type=at_least(0), default=0, help="seed of the synthetic inputs")),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        fail(f"{self.prog}: {message}")


def bench_parser(name, doc, flags, **defaults):
    """An ArgumentParser with the vocabulary's `flags` (names of FLAGS), `defaults` replacing theirs."""
    parser = _Parser(prog=f"python -m tools.bench {name}", description=doc, allow_abbrev=False,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for key in flags:
        flag, keywords = FLAGS[key]
        keywords = dict(keywords)
        if key in defaults:
            keywords["default"] = defaults.pop(key)
        parser.add_argument(flag, **keywords)
    return parser


def batch_spec(args, argv, npz_sets):
    """The BatchSpec of --batch, --text-length, --lengths, --seed, --batch-npz; refuses the flags of
    `npz_sets` given beside --batch-npz (the file would override them)."""
    given = {a.split("=")[0] for a in argv} & set(npz_sets)
    if args.batch_npz and given:
        fail(f"--batch-npz holds the batch: {', '.join(sorted(given))} would be ignored")
    return BatchSpec(args.batch, args.text_length, args.lengths, args.seed, args.batch_npz)


def run_for_json(command, what):
    """Run a benchmark subprocess (`command` without --json) and return the JSON line it appended."""
    with tempfile.TemporaryDirectory(prefix="mindclip_bench_") as folder:
        out = os.path.join(folder, "result.jsonl")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
        proc = subprocess.run(command + ["--json", out], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, check=False)
        if proc.returncode != 0 or not os.path.exists(out):
            last = (proc.stdout.strip().splitlines() or ["no output"])[-1]
            fail(f"{what} failed (exit {proc.returncode}): {last}")
        with open(out, encoding="utf-8") as f:
            return json.loads(f.read().strip().splitlines()[-1])


def without_flags(argv, flags):
    """`argv` without each of `flags` and its value (`--flag value` or `--flag=value`)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        elif not arg.startswith(tuple(f + "=" for f in flags)):
            out.append(arg)
    return out
