"""Inference from an export folder alone: same embeddings, predictions and similarities as the
checkpoint model (recomputed here with NumPy), and clear errors for bad inputs."""
import json
import os
import shutil

import numpy as np
import pytest
import mindspore as ms
from PIL import Image

import mindclip
from mindclip.data import preprocess_image
from mindclip.export import ExportedCLIP, ImageReadError, SidecarError, TextTooLongError, read_sidecar
from mindclip.models.weights import save_weights

from tools import export as export_tool
from tools import infer as infer_tool

TOL = 1e-5
CLASSES = ["circle", "square", "striped pattern", "noise", "red sky"]
TEMPLATES = ["a photo of a {}.", "a drawing of a {}."]
CAPTIONS = ["a red square on white", "random coloured noise", "a blue circle"]


def write_images(folder):
    """Five small images of different sizes and modes (RGB, grayscale, RGBA, palette, JPEG)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:80]
    arrays = [rng.integers(0, 256, (48, 80, 3), dtype=np.uint8),
              np.where((xx - 40) ** 2 + (yy - 24) ** 2 < 300, 250, 10).astype(np.uint8),
              np.dstack([(xx * 3) % 256, (yy * 5) % 256, np.full_like(xx, 90), np.full_like(xx, 200)]).astype(np.uint8),
              ((xx // 8 + yy // 8) % 2 * 255).astype(np.uint8),
              np.dstack([np.full((70, 60), 220), np.full((70, 60), 40), np.full((70, 60), 30)]).astype(np.uint8)]
    paths = []
    for i, array in enumerate(arrays):
        image = Image.fromarray(array)
        image = image.convert("P") if i == 3 else image
        path = os.path.join(folder, f"img{i}.jpg" if i == 4 else f"img{i}.png")
        image.save(path)
        paths.append(path)
    return paths


def model_embeddings(model, images=None, tokens=None):
    """The checkpoint model's normalised embeddings, op by op (PyNative)."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        if images is not None:
            return model.encode_image(ms.Tensor(images)).asnumpy()
        return model.encode_text(ms.Tensor(tokens)).asnumpy()
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny ResNet-18 CLIP with logit_scale ln(50), saved, then exported by tools/export.py."""
    root = tmp_path_factory.mktemp("infer")
    model = mindclip.create_model("tiny_resnet18")
    model.logit_scale.set_data(ms.Tensor(np.log(50.0), ms.float32))
    checkpoint = str(root / "model.ckpt")
    save_weights(model, checkpoint)
    export_dir = str(root / "export")
    assert export_tool.main(["--model", "tiny_resnet18", "--checkpoint", checkpoint, "--out", export_dir]) == 0
    model.set_train(False)
    images = write_images(str(root))
    pixels = np.stack([preprocess_image(Image.open(p).convert("RGB"), 64) for p in images])
    return {"model": model, "dir": export_dir, "images": images, "pixels": pixels, "root": root,
            "clip": ExportedCLIP(export_dir, batch_size=3)}  # batch 3: 5 images run as 3 + 2


def test_sidecar_records_the_checkpoint(setup):
    sidecar = read_sidecar(setup["dir"])
    assert sidecar["model"]["logit_scale"] == pytest.approx(50.0, rel=1e-6)
    assert sidecar["model"]["checkpoint"].endswith("model.ckpt") and sidecar["model"]["name"] == "tiny_resnet18"
    assert setup["clip"].logit_scale == pytest.approx(50.0, rel=1e-6) and setup["clip"].image_size == 64


def test_embeddings_equal_the_checkpoint_model(setup):
    clip, model = setup["clip"], setup["model"]
    image_ref = model_embeddings(model, images=setup["pixels"])
    np.testing.assert_allclose(clip.encode_images(setup["images"]), image_ref, rtol=0, atol=TOL)
    np.testing.assert_allclose(clip.encode_images(setup["pixels"]), image_ref, rtol=0, atol=TOL)
    text_ref = model_embeddings(model, tokens=mindclip.tokenize(CAPTIONS))
    np.testing.assert_allclose(clip.encode_texts(CAPTIONS), text_ref, rtol=0, atol=TOL)


def test_zero_shot_equals_the_checkpoint_model(setup):
    clip, model = setup["clip"], setup["model"]
    result = clip.zero_shot(setup["images"], CLASSES, TEMPLATES, top_k=3)
    # NumPy from the checkpoint model: mean of template embeddings, renormalised, scaled cosines, softmax.
    image_ref = model_embeddings(model, images=setup["pixels"])
    prompts = [t.format(c) for c in CLASSES for t in TEMPLATES]
    text_ref = model_embeddings(model, tokens=mindclip.tokenize(prompts)).reshape(len(CLASSES), len(TEMPLATES), -1)
    classes = text_ref.mean(1)
    classes /= np.linalg.norm(classes, axis=1, keepdims=True)
    logits = 50.0 * image_ref @ classes.T
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(result["probs"], probs, rtol=0, atol=1e-4)
    assert result["labels"] == [CLASSES[i] for i in probs.argmax(1)]
    assert result["top"].shape == (5, 3) and (result["top"][:, 0] == probs.argmax(1)).all()
    assert (np.diff(np.take_along_axis(result["probs"], result["top"], 1), axis=1) <= 0).all()


def test_similarity_equals_the_checkpoint_model(setup):
    clip, model = setup["clip"], setup["model"]
    expected = model_embeddings(model, images=setup["pixels"]) @ model_embeddings(
        model, tokens=mindclip.tokenize(CAPTIONS)).T
    np.testing.assert_allclose(clip.similarity(setup["images"], CAPTIONS), expected, rtol=0, atol=TOL)


def test_infer_tool_prints_the_predictions(setup, capsys):
    labels = setup["clip"].zero_shot(setup["images"], CLASSES)["labels"]
    assert infer_tool.main(["--export", setup["dir"], "--images", *setup["images"], "--classes", *CLASSES]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("  (")[0] for line in lines] == [f"{p}: {label}" for p, label in zip(setup["images"], labels)]
    assert infer_tool.main(["--export", setup["dir"], "--images", setup["images"][0], "--captions", *CAPTIONS]) == 0
    sims = setup["clip"].similarity(setup["images"][:1], CAPTIONS)[0]
    printed = [float(line.split()[0]) for line in capsys.readouterr().out.splitlines()[1:]]
    np.testing.assert_allclose(printed, sims, atol=1e-4)


# ---------------------------------------------------------------------------------------- bad inputs
def copy_export(setup, name):
    target = str(setup["root"] / name)
    shutil.copytree(setup["dir"], target)
    return target


def edit_sidecar(folder, edit):
    path = os.path.join(folder, "mindclip_export.json")
    with open(path, encoding="utf-8") as f:
        sidecar = json.load(f)
    edit(sidecar)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(sidecar, f)


def test_missing_sidecar(setup, tmp_path, capsys):
    with pytest.raises(SidecarError, match="mindclip_export.json: sidecar not found"):
        ExportedCLIP(str(tmp_path))
    assert infer_tool.main(["--export", str(tmp_path), "--images", setup["images"][0], "--classes", "a"]) == 2
    assert "sidecar not found" in capsys.readouterr().err


def test_sidecar_of_other_files_is_refused(setup):
    folder = copy_export(setup, "other_files")
    with open(os.path.join(folder, "text_encoder.mindir"), "ab") as f:
        f.write(b"\0")
    with pytest.raises(SidecarError, match=r"'text.sha256' does not match .*text_encoder.mindir"):
        ExportedCLIP(folder)
    os.remove(os.path.join(folder, "image_encoder.mindir"))
    with pytest.raises(SidecarError, match=r"'image.file' names .*image_encoder.mindir, which does not exist"):
        ExportedCLIP(folder)


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["image"].pop("mean"), "missing key 'image.mean'"),
    (lambda s: s.update(format_version=2), "'format_version' is 2"),
    (lambda s: s["text"].update(tokenizer_vocab_sha256="0" * 64), "'text.tokenizer_vocab_sha256' is 0000"),
    (lambda s: s["image"].update(std=[0.5, 0.5, 0.5]), r"'image.std' is \[0.5, 0.5, 0.5\]"),
])
def test_mismatched_sidecar(setup, edit, message):
    folder = copy_export(setup, f"edited_{abs(hash(message))}")
    edit_sidecar(folder, edit)
    with pytest.raises(SidecarError, match=message):
        ExportedCLIP(folder)


def test_invalid_sidecar_json(setup):
    folder = copy_export(setup, "bad_json")
    with open(os.path.join(folder, "mindclip_export.json"), "w", encoding="utf-8") as f:
        f.write('{\n  "format": "mindclip-export",\n  oops\n}\n')
    with pytest.raises(SidecarError, match="invalid JSON at line 3"):
        ExportedCLIP(folder)


def test_unreadable_or_missing_image(setup, tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ImageReadError, match="broken.png: cannot read image"):
        setup["clip"].encode_images([setup["images"][0], str(bad)])
    with pytest.raises(ImageReadError, match="nowhere.jpg: image file not found"):
        setup["clip"].zero_shot([str(tmp_path / "nowhere.jpg")], CLASSES)
    assert infer_tool.main(["--export", setup["dir"], "--images", str(bad), "--classes", *CLASSES]) == 2
    assert "broken.png: cannot read image" in capsys.readouterr().err


def test_text_longer_than_the_context(setup, capsys):
    long_text = " ".join(["word"] * 76)  # 76 BPE ids + SOT + EOT = 78 > 77
    assert len(mindclip.Tokenizer().encode(long_text)) == 76
    setup["clip"].encode_texts([" ".join(["word"] * 75)])  # 77 tokens: fits exactly
    with pytest.raises(TextTooLongError, match="text 1 .* has 78 tokens with SOT/EOT, more than the exported "
                                               "context length 77"):
        setup["clip"].encode_texts(["fine", long_text])
    assert infer_tool.main(["--export", setup["dir"], "--images", setup["images"][0], "--captions", long_text]) == 2
    assert "has 78 tokens" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--classes", *CLASSES, "--top-k", "0"], "error: --top-k must be at least 1, got 0"),
    (["--classes", *CLASSES, "--templates", "a photo"], "error: --templates: 'a photo' must contain exactly one '{}'"),
    (["--classes", *CLASSES, "--templates", "a {}", "{0} {1}"], "error: --templates: '{0} {1}' must contain"),
    (["--classes", *CLASSES, "--templates", "a {name}"], "error: --templates: 'a {name}' must contain"),
    (["--classes", ""], "error: --classes: entry 1 of 1 is empty ('')"),
    (["--classes", "cat", "  "], "error: --classes: entry 2 of 2 is empty ('  ')"),
    (["--captions", "a cat", ""], "error: --captions: entry 2 of 2 is empty"),
    (["--captions", "a cat", "--templates", "a {}"], "error: --templates is used with --classes only"),
])
def test_infer_tool_refuses_bad_flags_in_one_line(setup, capsys, extra, message):
    assert infer_tool.main(["--export", setup["dir"], "--images", setup["images"][0], *extra]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.err.count("\n") == 1 and not captured.out


def test_zero_shot_refuses_what_would_be_silently_wrong(setup):
    clip, images = setup["clip"], setup["images"][:1]
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        clip.zero_shot(images, CLASSES, top_k=0)
    with pytest.raises(ValueError, match=r"template 0 \('a photo'\) must contain exactly one"):
        clip.zero_shot(images, CLASSES, ["a photo"])  # every class would get the same text
    with pytest.raises(ValueError, match="class 1 has an empty"):
        clip.zero_shot(images, ["cat", ""])
