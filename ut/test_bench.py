"""Smoke tests of every benchmark (`python -m tools.bench <name>`, measured by `mindclip.bench`): tiny
presets, one step, in-process `main(argv)`; the JSON line each appends has the expected keys and sane
values. `train --batches` runs its real subprocesses. The entry points and the NumPy parts of the
library import without MindSpore or torch."""
import ast
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mindclip.bench.ops import OPS
from mindclip.data.synthetic import synthetic_arrays
from tools.bench import buckets, data, hungarian, infer, ops, side_by_side, train
from tools.bench._cli import ROOT

ONE_STEP = ["--steps", "1", "--warmup", "0"]


def run(main, argv, tmp_path):
    """main(argv + --json) -> (its return value, the JSON lines it appended)."""
    out = tmp_path / "bench.jsonl"
    result = main(argv + ["--json", str(out)])
    return result, [json.loads(line) for line in out.read_text().splitlines()]


def refused(main, argv, capsys, *words):
    """main(argv) exits with status 2 and one stderr line holding `words`."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err


def test_train_lightclip_step_from_npz_with_clipping_matcher_share_and_pieces(tmp_path):
    np.savez(tmp_path / "batch.npz", **synthetic_arrays("lightclip", 64, 3, 12, np.random.default_rng(5), "cc3m"))
    pieces = ["token_table", "inst_loss", "token_loss", "mlm_branch", "optimizer"]
    result, lines = run(train.main, ["--model", "tiny_resnet18", "--method", "lightclip", *ONE_STEP,
                                     "--batch-npz", str(tmp_path / "batch.npz"), "--set", "optim.clip_grad_norm=1",
                                     "--pieces", ",".join(pieces)], tmp_path)
    assert lines == [result]
    assert (result["method"], result["batch"], result["text_length"], result["lengths"]) == ("lightclip", 3, 12, "npz")
    parts = result["parts"]
    assert result["finite"] and list(parts) == ["inst", "token", "mlm_text", "mlm_fuse"]
    assert all(0 < v < 20 for v in parts.values())
    expected = 0.8 * parts["inst"] + 0.1 * parts["token"] + 0.05 * (parts["mlm_text"] + parts["mlm_fuse"])
    assert result["loss"] == pytest.approx(expected, abs=1e-4)  # the paper's weights, implied by the method
    assert 0.2 < result["peak_rss_gib"] < 16
    assert result["step_s_min"] <= result["step_s_median"] < result["first_step_s"]
    assert result["images_per_s"] == pytest.approx(3 / result["step_s_median"], rel=0.01)
    assert result["host_match_calls"] == 1  # one matcher call per step: the forward is not run twice
    assert 0 < result["host_match_s"] < result["step_s_median"] and 0 < result["host_match_share"] < 1
    assert list(result["pieces"]) == pieces
    assert all(row["step_s"] > 0 and row["compile_s"] > -1 for row in result["pieces"].values())


def test_train_memory_slope_of_accumulated_recomputed_steps_one_process_per_batch(tmp_path):
    result, lines = run(train.main, ["--model", "tiny_vit", "--batches", "2,4", "--text-length", "8", "--steps", "1",
                                     "--warmup", "0", "--set", "optim.accumulation_steps=2",
                                     "--set", "optim.accumulation=gradients", "--set", "train.recompute=all"], tmp_path)
    assert lines == [result] and result["batches"] == [2, 4]
    runs = result["runs"]
    assert [(r["batch"], r["accumulation_steps"], r["lengths"]) for r in runs] == [(2, 2, "uniform"), (4, 2, "uniform")]
    assert all(r["finite"] and r["host_match_s"] == 0 for r in runs)
    peaks = result["peak_rss_gib"]
    assert peaks == [r["peak_rss_gib"] for r in runs] and min(peaks) > 0.2
    assert result["gib_per_sample"] == pytest.approx((peaks[1] - peaks[0]) / 2, abs=1e-4)


@pytest.mark.parametrize("argv, words", [
    (["--set", "data.augment=none"], ["override data.augment=none", "cannot honour"]),
    (["--set", "optim.min_lr=0.1"], ["override optim.min_lr=0.1", "cannot honour"]),
    (["--set", "loss.no_such_key=1"], ["no_such_key"]),
    (["--batches", "4,4"], ["--batches"]),
    (["--batches", "2,4", "--pieces", "all"], ["--pieces"]),
    (["--steps", "0"], ["--steps"]),
    (["--batch-npz", "/nonexistent.npz"], ["/nonexistent.npz"]),
    (["--batch-npz", "/nonexistent.npz", "--set", "optim.accumulation_steps=2"], ["accumulation_steps=2"]),
    (["--batch-npz", "/nonexistent.npz", "--batch=8"], ["--batch", "ignored"]),
])
def test_train_refuses_what_it_cannot_honour(argv, words, capsys):
    refused(train.main, ["--model", "tiny_vit"] + argv, capsys, *words)


def test_side_by_side_refuses_a_bucket_below_the_minimum_before_running_anything(capsys):
    refused(side_by_side.main, ["--buckets", "1,32", "--torch-python", sys.executable], capsys, "--buckets", "1")


def test_train_refuses_a_model_that_does_not_fit_the_method(capsys):
    refused(train.main, ["--model", "tiny_vit", "--method", "lightclip"], capsys, "method=lightclip needs", "tiny_vit")


def test_train_refuses_unknown_or_absent_pieces(capsys):
    refused(train.main, ["--model", "tiny_vit", "--pieces", "token_loss"], capsys, "token_loss", "not part")
    refused(train.main, ["--model", "tiny_vit", "--pieces", "nope"], capsys, "nope", "unknown")


def test_train_refuses_an_npz_batch_of_another_image_size(tmp_path, capsys):
    np.savez(tmp_path / "batch.npz", **synthetic_arrays("clip", 16, 2, 8, np.random.default_rng(0)))
    refused(train.main, ["--model", "tiny_vit", "--batch-npz", str(tmp_path / "batch.npz")], capsys, "16 px", "32")


def test_infer_graph_pynative_and_exported(tmp_path):
    result, _ = run(infer.main, ["--model", "tiny_resnet18", "--batches", "2", "--steps", "1", "--warmup", "0",
                                 "--ways", "graph,pynative,exported", "--preprocess-images", "4", "--workers", "1"],
                    tmp_path)
    assert result["params_total"] == result["params_image"] + result["params_text"] + 1  # + logit_scale
    assert result["export"]["fp32"]["passed"] and result["export"]["fp32"]["max_abs_diff"] < 1e-5
    assert sorted(result["towers"]) == sorted(f"{t}/{w}/b2" for t in ("image", "text")
                                              for w in ("graph", "pynative", "exported"))
    for row in result["towers"].values():
        assert row["wall_ms"] > 0 and row["items_per_s"] == pytest.approx(2000 / row["wall_ms"], rel=0.02)
    assert result["preprocess_images_per_s"]["1"] > 0


def test_data_pipeline(tmp_path):
    result, _ = run(data.main, ["--batch", "2", "--steps", "2", "--images", "6", "--image-size", "32",
                                "--workers", "1"], tmp_path)
    assert result["workers"]["1"]["images_per_s"] > 0 and result["workers"]["1"]["images_per_cpu_s"] > 0


def test_hungarian(tmp_path):
    rows, lines = run(hungarian.main, ["--batches", "2,3", "--shapes", "4x10", "--words", "3", "--steps", "2"],
                      tmp_path)
    assert lines == rows and [r["batch"] for r in rows] == [2, 3]
    assert all(r["host_ms"] > 0 and r["graph_ms"] > 0 for r in rows)


def test_ops(tmp_path):
    result, _ = run(ops.main, ["--batch", "2", "--text-length", "4", "--width", "8", "--steps", "1"], tmp_path)
    assert result["shapes"] == {"x": [8, 8], "w": [32, 8], "h": [8, 32]}
    assert list(result["best_ms"]) == list(OPS) and min(result["best_ms"].values()) > 0


def test_buckets_of_the_demo_shards(tiny_demo, tmp_path, capsys):
    result, _ = run(buckets.main, ["--shards", f"{tiny_demo}/mindrecord/train-*.mindrecord", "--batch", "8"], tmp_path)
    # the demo's captions use at most 11 positions (docs/performance.md): every batch in the 16 bucket
    assert result["captions"] == 64 and result["share_of_batches"] == {"16": 1.0, "32": 0.0, "48": 0.0, "77": 0.0}
    assert result["caption_positions"]["max"] <= 11
    refused(buckets.main, ["--shards", f"{tmp_path}/none-*.mindrecord"], capsys, "no MindRecord shard", "none-*")
    refused(buckets.main, ["--captions", f"{tmp_path}/none.txt"], capsys, "captions file", "none.txt")


def test_buckets_synthetic_and_captions(tmp_path):
    result, _ = run(buckets.main, ["--lengths", "uniform", "--count", "320", "--text-length", "20",
                                   "--buckets", "8,16"], tmp_path)
    assert result["buckets"] == [8, 16, 20] and result["batches"] == 10
    assert sum(result["share_of_batches"].values()) == pytest.approx(1.0)
    captions = tmp_path / "captions.txt"
    captions.write_text("a cat\n" * 3 + "a dog on a red mat\n", encoding="utf-8")
    result, _ = run(buckets.main, ["--captions", str(captions), "--batch", "2", "--buckets", "4"], tmp_path)
    # "a cat" uses 4 positions (SOT a cat EOT); the batch holding the dog caption needs the next bucket
    assert result["share_of_batches"] == {"4": 0.5, "77": 0.5} and result["caption_positions"]["max"] == 8


def test_dispatch_from_the_command_line():
    listing = subprocess.run([sys.executable, "-m", "tools.bench", "-h"], cwd=ROOT, capture_output=True, text=True)
    assert listing.returncode == 0 and "train" in listing.stdout and "infer" in listing.stdout
    unknown = subprocess.run([sys.executable, "-m", "tools.bench", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert unknown.returncode == 2 and unknown.stderr.strip().splitlines() == [
        "error: unknown benchmark 'nope'; choose from train, infer, data, hungarian, ops, buckets, torch_reference, "
        "side_by_side"]


REFUSE_HEAVY_IMPORTS = """
import importlib, sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("mindspore", "torch"):
            raise ImportError(f"{name} was imported")
sys.meta_path.insert(0, Refuse())
for name in sys.argv[1:]:
    importlib.import_module(name)
"""


def test_entry_points_and_the_numpy_parts_import_without_mindspore_or_torch():
    """What the PyTorch interpreter imports (harness, synthetic batch, every entry point's module) and
    `import mindclip.bench` load neither framework: each benchmark imports its own when it runs."""
    modules = ["mindclip.bench", "mindclip.bench.harness", "mindclip.data.synthetic", "tools.bench.__main__",
               *(f"tools.bench.{name}" for name in ("train", "infer", "data", "hungarian", "ops", "buckets",
                                                     "torch_reference", "side_by_side"))]
    proc = subprocess.run([sys.executable, "-c", REFUSE_HEAVY_IMPORTS, *modules], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


TORCH_SIDE = {"torchvision_stub", "torch_model", "lightclip_torch", "torch_reference", "torch_pieces"}


def imported_modules(path):
    """The absolute module names a Python file imports (`from a import b` gives a and a.b)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_bench_is_the_top_of_the_package_and_its_torch_side_stays_apart():
    offenders = []
    for where, _, files in os.walk(os.path.join(ROOT, "mindclip")):
        for name in (f for f in files if f.endswith(".py")):
            path = os.path.join(where, name)
            relative = os.path.relpath(path, ROOT)
            imports = imported_modules(path)
            in_bench = os.path.basename(where) == "bench"
            if not in_bench:
                offenders += [f"{relative}: {m}" for m in imports if m.startswith("mindclip.bench")]
            elif name[:-3] not in TORCH_SIDE:  # MindSpore side: neither torch nor the PyTorch modules
                offenders += [f"{relative}: {m}" for m in imports if m.split(".")[0] in ("torch", "open_clip", "timm")
                              or m.split(".")[-1] in TORCH_SIDE]
    assert offenders == []
