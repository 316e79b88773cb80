"""Smoke tests of the PyTorch side of the benchmarks: `side_by_side` (its mindclip run real, the PyTorch
interpreter a recording stand-in, since CI has no torch) and `torch_reference` under a real PyTorch
interpreter when this machine has one ($MINDCLIP_TORCH_PYTHON or /work/refvenv/bin/python)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mindclip.bench import side_by_side as side_by_side_library
from tools.bench import side_by_side
from tools.bench._cli import ROOT

TORCH_PYTHON = next((p for p in (os.environ.get("MINDCLIP_TORCH_PYTHON"), "/work/refvenv/bin/python")
                     if p and os.access(p, os.X_OK)), None)
STAND_IN = """#!{python}
# Records each call (argv and the batch it was given) and answers like torch_reference.
import json, os, shutil, sys
import numpy as np
argv = sys.argv[1:]
log = os.environ["STAND_IN_LOG"]
npz = argv[argv.index("--batch-npz") + 1]
call = len(os.listdir(log))
shutil.copy(npz, os.path.join(log, f"call{{call}}.npz"))
length = int(np.load(npz)["tokens"].shape[1])
result = {{"argv": argv, "flops_per_step": 1000 * length, "step_s_median": 3.0, "torch": "t", "open_clip": "o", "timm": "m"}}
with open(argv[argv.index("--json") + 1], "a") as f:
    f.write(json.dumps(result) + "\\n")
"""


def refused(argv, capsys, *words):
    with pytest.raises(SystemExit) as info:
        side_by_side.main(argv)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err


def test_side_by_side_needs_a_torch_interpreter(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv(side_by_side.TORCH_PYTHON_ENV, raising=False)
    refused([], capsys, "--torch-python", side_by_side.TORCH_PYTHON_ENV)
    monkeypatch.setenv(side_by_side.TORCH_PYTHON_ENV, str(tmp_path / "missing"))
    refused([], capsys, "--torch-python", "missing", "not an executable file")


def test_side_by_side_gives_both_sides_the_same_batch_cut_to_its_bucket(monkeypatch, tmp_path):
    stand_in, log = tmp_path / "python", tmp_path / "calls"
    stand_in.write_text(STAND_IN.format(python=sys.executable))
    stand_in.chmod(0o755)
    log.mkdir()
    monkeypatch.setenv("STAND_IN_LOG", str(log))
    monkeypatch.setattr(side_by_side_library, "MODEL", "tiny_vit")  # the real model takes minutes to compile
    argv = ["--methods", "clip", "--batch", "2", "--image-size", "32", "--text-length", "32", "--lengths", "cc3m",
            "--buckets", "16", "--steps", "1", "--warmup", "0", "--torch-python", str(stand_in)]
    out = tmp_path / "rows.jsonl"
    rows = side_by_side.main(argv + ["--json", str(out)])
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows
    row = rows[0]
    full, cut = (np.load(log / f"call{i}.npz") for i in (0, 1))  # the timed full batch, then the FLOP count at 16
    assert full["tokens"].shape == (2, 32) and cut["tokens"].shape == (2, 16) and not full["tokens"][:, 16:].any()
    np.testing.assert_array_equal(cut["tokens"], full["tokens"][:, :16])
    np.testing.assert_array_equal(cut["image"], full["image"])
    assert (row["mindclip_text_length"], row["open_clip_text_length"]) == (16, 32)
    assert row["mindclip"]["text_length"] == 16 and row["mindclip"]["batch"] == 2  # train read the cut batch
    assert (row["mindclip_flops_per_step"], row["open_clip_flops_per_step"]) == (16000, 32000)
    assert row["ratio_open_clip_over_mindclip"] == pytest.approx(3.0 / row["mindclip_step_s"], rel=1e-2)
    assert "--flops" in row["open_clip"]["argv"]


@pytest.mark.skipif(TORCH_PYTHON is None, reason="no PyTorch interpreter on this machine")
def test_torch_reference_step_flops_and_pieces(tmp_path):
    out = tmp_path / "torch.jsonl"
    command = [TORCH_PYTHON, "-m", "tools.bench", "torch_reference", "--method", "clip", "--batch", "2",
               "--image-size", "64", "--text-length", "8", "--steps", "1", "--warmup", "0", "--flops",
               "--pieces", "token_table,inst_loss", "--json", str(out)]
    proc = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), check=False)
    assert proc.returncode == 0, proc.stdout[-2000:]
    result = json.loads(out.read_text())
    with np.load(os.path.join(ROOT, "ut", "data", "lightclip_torch_golden.npz")) as golden:
        bench = json.loads(str(golden["meta_json"]))["bench"]
    assert result["params"] == bench["params_clip"] - (77 - 8) * bench["arch"]["width"]  # 8 position rows, not 77
    assert result["flops_per_step"] > 0 and result["step_s_median"] > 0 and 0 < result["loss"] < 10
    assert list(result["pieces"]) == ["token_table", "inst_loss"]


@pytest.mark.skipif(TORCH_PYTHON is None, reason="no PyTorch interpreter on this machine")
def test_torch_reference_refuses_flags_its_batch_file_would_override(tmp_path):
    command = [TORCH_PYTHON, "-m", "tools.bench", "torch_reference", "--batch-npz", str(tmp_path / "b.npz"),
               "--text-length", "16"]
    proc = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: --batch-npz holds the batch: --text-length would be ignored"]
