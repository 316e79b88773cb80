"""tools/visualize.py on a real (tiny) LightCLIP run: its log, its checkpoint, the demo's held-out set."""
import json
import os

import numpy as np
import pytest
import yaml
from PIL import Image
from tool_loader import load_tool



@pytest.fixture(scope="module")
def trained_run(tiny_demo, tmp_path_factory):
    """Three steps of LightCLIP with the token loss (no MLM) through tools/train.py: log + checkpoint."""
    folder = tmp_path_factory.mktemp("viz_run")
    recipe = {
        "method": "lightclip",
        "model": {"name": "tiny_mobilenetv2"},
        "data": {"train_shards": os.path.join(tiny_demo, "mindrecord", "train-*.mindrecord"), "batch_size": 8,
                 "image_size": 64, "augment": "none", "num_workers": 1, "context_length": 32},
        "loss": {"inst_weight": 0.8, "token_weight": 0.2, "mlm_weight": 0.0, "r1": 0.33, "r2": 0.66},
        "optim": {"lr": 1e-3},
        "train": {"max_steps": 3, "output_dir": str(folder / "run"), "log_every": 100},
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert load_tool("train").main(["-c", str(path)]) == 0
    checkpoints = sorted(f for f in os.listdir(folder / "run") if f.startswith("ckpt_step"))
    return str(folder / "run"), str(folder / "run" / checkpoints[-1])


def test_curves_read_every_field_of_a_real_log(trained_run, tmp_path):
    run_dir, _ = trained_run
    with open(os.path.join(run_dir, "train_log.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    out = str(tmp_path / "curves.png")
    (run,) = load_tool("visualize").run(["curves", run_dir, "--labels", "tiny lightclip", "--out", out])
    assert run.label == "tiny lightclip"
    assert sorted(records[0]["parts"]) == ["inst", "mlm_fuse", "mlm_text", "token"]
    assert sorted(n for n in run.series if n.startswith("part:")) == ["part:inst", "part:token"]  # MLM off: 0.0
    assert all(r["parts"]["mlm_text"] == r["parts"]["mlm_fuse"] == 0.0 for r in records)
    np.testing.assert_array_equal(run.steps, [r["step"] for r in records])
    for key in ("loss", "lr", "logit_scale", "images_per_s"):
        np.testing.assert_array_equal(run.series[key], [r[key] for r in records])
    for part in ("inst", "token"):
        np.testing.assert_array_equal(run.series[f"part:{part}"], [r["parts"][part] for r in records])
    assert run.skipped == sum(not r["finite"] for r in records)
    with Image.open(out) as figure:
        assert figure.size[0] >= 3 * 340


def test_align_uses_the_token_projection_the_training_saved(trained_run, tiny_demo, tmp_path):
    from mindclip.models.weights import read_checkpoint
    from mindclip.viz.alignment import TOKEN_PROJ_KEY

    _, checkpoint = trained_run
    assert TOKEN_PROJ_KEY in read_checkpoint(checkpoint)  # the name the trainer really writes
    image = os.path.join(tiny_demo, "images", "val", sorted(os.listdir(os.path.join(tiny_demo, "images", "val")))[0])
    image = os.path.join(image, sorted(os.listdir(image))[0])
    maps = load_tool("visualize").run(["align", "--model", "tiny_mobilenetv2", "--checkpoint", checkpoint,
                                        "--image", image, "--caption", "a large blue star", "--words", "blue", "star",
                                        "--out", str(tmp_path / "align.png")])
    assert maps.image_tokens_from == "token projection" and maps.grid == (2, 2)
    assert [w.word for w in maps.words] == ["blue", "star"]
    assert all(len(w.matched) == 1 for w in maps.words)  # 4 words on 4 patches: each matched once


def test_embed_projects_the_demo_embeddings(trained_run, tiny_demo, tmp_path):
    from mindclip.viz import embedding

    _, checkpoint = trained_run
    out = str(tmp_path / "embed.png")
    features, labels, panels = load_tool("visualize").run([
        "embed", "--model", "tiny_mobilenetv2", "--checkpoint", checkpoint, "--dataset", "demo", "--root", tiny_demo,
        "--method", "pca", "--batch-size", "8", "--out", out])
    assert features.shape == (24, 32) and len(labels) == 24
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(panels[0][1], embedding.pca(features)[0], atol=1e-9)
    with pytest.raises(ValueError, match="unknown class names"):
        load_tool("visualize").run(["embed", "--model", "tiny_mobilenetv2", "--dataset", "demo", "--root", tiny_demo,
                                     "--classes", "blue circle", "plaid circle", "--out", out])
