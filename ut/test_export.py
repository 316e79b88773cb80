"""Export of the inference towers: files reload and equal the model at batch 1 and 5, in this
process and in a fresh one; only the towers' own parameters are exported; fp16 error is bounded."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import mindspore as ms
from mindspore import nn

import mindclip
from mindclip.export import (FP16_TOLERANCE, FP32_TOLERANCE, IMAGE_FILE, SIDECAR_NAME, TEXT_FILE,
                             ExportVerificationError, export_model, read_sidecar)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOWERS = ["tiny_resnet18", "tiny_mobilenetv2", "tiny_swin"]
CAPTIONS = ["a diagram", "a photo of a small brown dog playing in the snow", "red", "an old map of the city",
            "two cats"]


def reference(model, images, tokens):
    """The model's own normalised embeddings, run op by op (PyNative): no graph of ours involved."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        return (model.encode_image(ms.Tensor(images)).asnumpy(), model.encode_text(ms.Tensor(tokens)).asnumpy())
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)


def check_inputs(model, seed=1):
    rng = np.random.default_rng(seed)  # not the export's own check inputs (seed 0, other captions)
    size = model.visual.image_size
    images = rng.uniform(-2, 2, (5, 3, size, size)).astype(np.float32)
    return images, mindclip.tokenize(CAPTIONS)


def load_graph(path, shape, dtype):
    cell = nn.GraphCell(ms.load(path))
    cell.set_inputs(ms.Tensor(shape=shape, dtype=dtype))
    return cell


def unit_scale_image_features(model):
    """Rescale `visual.proj` so that raw image features have norm ~1.

    Randomly initialised MobileNet-V2 gives features of norm ~2e-8, below the 1e-12 that
    `l2_normalize` adds to the squared norm: its "normalised" embeddings would have norm 0.01 and
    differ by less than the tolerance whatever the export did. A trained model has no such problem.
    """
    images, _ = check_inputs(model, seed=3)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        raw = model.encode_image(ms.Tensor(images), normalize=False).asnumpy()
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)
    weight = model.visual.proj.weight
    weight.set_data(ms.Tensor(weight.asnumpy() / np.linalg.norm(raw, axis=1).mean()))
    return model


@pytest.fixture(scope="module", params=TOWERS)
def exported(request, tmp_path_factory):
    model = unit_scale_image_features(mindclip.create_model(request.param))
    out = str(tmp_path_factory.mktemp(request.param))
    report = export_model(model, out, model_name=request.param)
    return model, out, report


def test_report_and_sidecar(exported):
    model, out, report = exported
    check = report["verification"]
    assert check["passed"] and check["tolerance"] == FP32_TOLERANCE
    assert set(check["image"]) == set(check["text"]) == {"1", "5"}
    assert max(check["image"].values()) <= FP32_TOLERANCE and max(check["text"].values()) <= FP32_TOLERANCE
    assert read_sidecar(out) == json.loads(json.dumps(report))  # what is on disk is what was returned
    size, length = model.visual.image_size, model.text.context_length
    assert report["image"]["input"]["shape"] == [None, 3, size, size]
    assert report["text"]["input"]["shape"] == [None, length] and report["text"]["context_length"] == 77
    # the graph input names converter_lite needs, as recorded inside the files
    assert report["image"]["input"]["name"].endswith(":images") and report["text"]["input"]["name"].endswith(":tokens")
    assert report["model"]["embed_dim"] == 32
    assert report["model"]["logit_scale"] == pytest.approx(float(np.exp(model.logit_scale.asnumpy())))
    assert report["text"]["tokenizer_vocab_sha256"] == mindclip.Tokenizer().vocab_sha256
    assert report["export"]["fp16"] is False and report["export"]["verify_batch_sizes"] == [1, 5]


def test_reloaded_files_equal_the_model_at_batch_1_and_5(exported):
    model, out, _ = exported
    images, tokens = check_inputs(model)
    image_ref, text_ref = reference(model, images, tokens)
    size = model.visual.image_size
    image_cell = load_graph(os.path.join(out, IMAGE_FILE), [None, 3, size, size], ms.float32)
    text_cell = load_graph(os.path.join(out, TEXT_FILE), [None, 77], ms.int32)
    for batch in (5, 1):
        image_out = image_cell(ms.Tensor(images[:batch])).asnumpy()
        text_out = text_cell(ms.Tensor(tokens[:batch])).asnumpy()
        assert image_out.shape == text_out.shape == (batch, 32)
        np.testing.assert_allclose(image_out, image_ref[:batch], rtol=0, atol=FP32_TOLERANCE)
        np.testing.assert_allclose(text_out, text_ref[:batch], rtol=0, atol=FP32_TOLERANCE)
        np.testing.assert_allclose(np.linalg.norm(image_out, axis=1), 1, atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(text_out, axis=1), 1, atol=1e-6)
    assert np.abs(text_ref[0] - text_ref[1]).max() > 1e-3  # distinct captions give distinct rows


def test_only_each_towers_own_parameters_are_exported(exported):
    model, out, _ = exported
    size = model.visual.image_size
    image_names = set(load_graph(os.path.join(out, IMAGE_FILE), [None, 3, size, size], ms.float32).parameters_dict())
    text_names = set(load_graph(os.path.join(out, TEXT_FILE), [None, 77], ms.int32).parameters_dict())
    # The wrapper holds the CLIP as `model`: graph names are "model." + the CLIP-relative names.
    visual = {"model.visual." + name for name, _ in model.visual.parameters_and_names()}
    text = {"model.text." + name for name, _ in model.text.parameters_and_names()}
    assert image_names <= visual and "model.visual.proj.weight" in image_names
    assert text_names == text  # every text weight is used by pooling; nothing else (no logit_scale)
    trainable_visual = {"model.visual." + name for name, p in model.visual.parameters_and_names() if p.requires_grad}
    assert trainable_visual <= image_names


FRESH_PROCESS_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
import mindclip
import numpy as np
import mindspore as ms
ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
from mindclip.export import ExportedCLIP
clip = ExportedCLIP(sys.argv[2])
np.save(sys.argv[4], clip.encode_images(np.load(sys.argv[3])))
np.save(sys.argv[6], clip.encode_tokens(np.load(sys.argv[5])))
"""


def test_files_load_in_a_fresh_process(exported, tmp_path):
    model, out, _ = exported
    images, tokens = check_inputs(model, seed=2)
    image_ref, text_ref = reference(model, images, tokens)
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_PROCESS_SCRIPT)
    paths = [str(tmp_path / name) for name in ("images.npy", "image_out.npy", "tokens.npy", "text_out.npy")]
    np.save(paths[0], images)
    np.save(paths[2], tokens)
    done = subprocess.run([sys.executable, str(script), ROOT, out, *paths], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_allclose(np.load(paths[1]), image_ref, rtol=0, atol=FP32_TOLERANCE)
    np.testing.assert_allclose(np.load(paths[3]), text_ref, rtol=0, atol=FP32_TOLERANCE)


def test_fp16_export_error_is_bounded_and_checked(tmp_path):
    """fp16 towers differ from the fp32 model by more than 1e-5 (they are fp16) and less than
    FP16_TOLERANCE; with the fp32 tolerance the export fails and leaves no sidecar."""
    model = mindclip.create_model("tiny_resnet18")  # raw features of norm ~10: no rescaling, which fp16 overflows
    out = str(tmp_path / "fp16")
    with pytest.raises(ExportVerificationError, match="no mindclip_export.json written") as failure:
        export_model(model, out, fp16=True, tolerance=FP32_TOLERANCE)
    check = failure.value.report["verification"]
    assert FP32_TOLERANCE < check["max_abs_diff"] <= FP16_TOLERANCE
    assert not os.path.exists(os.path.join(out, SIDECAR_NAME))
    text_params = load_graph(os.path.join(out, TEXT_FILE), [None, 77], ms.int32).parameters_dict()
    dtypes = {name: p.dtype for name, p in text_params.items()}
    assert dtypes["model.text.token_embedding"] == ms.float16 and dtypes["model.text.ln_final.weight"] == ms.float32
    # The given model is untouched: still float32 and still equal to itself.
    assert all(p.dtype == ms.float32 for p in model.get_parameters())
