"""open_clip / OpenAI weight conversion: parity with open_clip's own embeddings, file reading, errors.

The goldens (`ut/data/convert_golden_{rn,vit}.*`) are tiny open_clip CLIPs with random weights and
the embeddings open_clip computed for them; see `ut/data/CONVERT_GOLDENS.md`.
"""
import dataclasses
import importlib.util
import json
import os
import struct

import numpy as np
import pytest

import mindclip  # noqa: F401  (sets the oneDNN cap before mindspore loads)
import mindspore as ms

from mindclip.config import parse_override
from mindclip.export.mindir import load_tower
from mindclip.export import ImageEncoder
from mindclip.models.clip import CLIP
from mindclip.models.clip_image_towers import build_clip_tower
from mindclip.models.convert import (convert_open_clip_state, kept_at_init, preset_from_open_clip_config,
                                     read_safetensors, read_state_dict)
from mindclip.models.text import TextTransformer
from mindclip.models.weights import load_weights
from tool_loader import load_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(ROOT, "ut", "data")
KINDS = ("rn", "vit")
TOLERANCE = 1e-4


def clip_from_preset(preset, **tower_overrides):
    """A CLIP built from a preset mapping (what the registry does for `modified_resnet` / `vit`)."""
    image, text = preset["image"], preset["text"]
    visual = build_clip_tower(image["backbone"], preset["embed_dim"], image["image_size"],
                              dict(image["tower"], **tower_overrides))
    text_tower = TextTransformer(text["context_length"], text["vocab_size"], text["width"], text["heads"],
                                 text["layers"], preset["embed_dim"], text["act"])
    model = CLIP(visual, text_tower)
    model.set_train(False)
    return model


def golden_paths(kind):
    return (os.path.join(DATA_DIR, f"convert_golden_{kind}.safetensors"),
            os.path.join(DATA_DIR, f"convert_golden_{kind}.npz"))


class RawEmbeddings(ms.nn.Cell):
    """(images, tokens) -> unnormalised (image, text) embeddings, in one compiled graph."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def construct(self, images, tokens):
        return self.model.encode_image(images, False), self.model.encode_text(tokens, False)


@pytest.fixture(scope="module", params=KINDS)
def converted(request):
    """(kind, golden arrays, CLIP loaded from the converted open_clip state dict)."""
    weights_path, golden_path = golden_paths(request.param)
    golden = dict(np.load(golden_path))
    preset = preset_from_open_clip_config(json.loads(str(golden["config_json"])), quick_gelu=True)
    model = clip_from_preset(preset)
    load_weights(model, convert_open_clip_state(read_state_dict(weights_path), model))
    return request.param, golden, model


def test_embeddings_match_open_clip(converted):
    _, golden, model = converted
    image, text = RawEmbeddings(model)(ms.Tensor(golden["images"]), ms.Tensor(golden["tokens"]))
    image, text = image.asnumpy(), text.asnumpy()
    assert image.shape == golden["image_features"].shape and text.shape == golden["text_features"].shape
    np.testing.assert_allclose(image, golden["image_features"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(text, golden["text_features"], rtol=0, atol=TOLERANCE)


def test_converted_image_tower_exports_to_mindir(converted, tmp_path):
    """encode_image exported with a None batch reloads as a GraphCell and still matches open_clip."""
    kind, golden, model = converted
    size = model.visual.image_size
    path = str(tmp_path / f"image_{kind}")
    ms.export(ImageEncoder(model), ms.Tensor(shape=[None, 3, size, size], dtype=ms.float32),
              file_name=path, file_format="MINDIR")
    cell = load_tower(path + ".mindir", [None, 3, size, size], ms.float32)
    reference = golden["image_features"] / np.linalg.norm(golden["image_features"], axis=1, keepdims=True)
    for batch in (1, 2):
        out = cell(ms.Tensor(golden["images"][:batch])).asnumpy()
        np.testing.assert_allclose(out, reference[:batch], rtol=0, atol=TOLERANCE)


def test_read_safetensors_matches_the_reference_reader():
    """Our NumPy parser against the `safetensors` package (a dependency of mindspore, not of mindclip)."""
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    path = golden_paths("vit")[0]
    ours, reference = read_safetensors(path), safetensors_numpy.load_file(path)
    assert sorted(ours) == sorted(reference)
    for name, value in reference.items():
        assert ours[name].dtype == value.dtype and ours[name].shape == value.shape
        np.testing.assert_array_equal(ours[name], value)


def test_read_safetensors_dtypes(tmp_path):
    """float16, int64 and bfloat16 (widened to float32) written by hand in the documented layout."""
    f16 = np.array([[1.5, -2.25]], np.float16)
    i64 = np.array([3, -4, 5], np.int64)
    f32 = np.array([1.0, -3.140625, 65280.0], np.float32)  # exactly representable in bfloat16
    bf16 = (f32.view(np.uint32) >> 16).astype("<u2")
    blobs = [("a", "F16", f16), ("b", "I64", i64), ("c", "BF16", bf16)]
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, dtype, array in blobs:
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    header_bytes = json.dumps(header).encode()
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", len(header_bytes)) + header_bytes + b"".join(a.tobytes() for _, _, a in blobs))
    state = read_safetensors(str(path))
    np.testing.assert_array_equal(state["a"], f16)
    np.testing.assert_array_equal(state["b"], i64)
    assert state["c"].dtype == np.float32
    np.testing.assert_array_equal(state["c"], f32)


def test_pt_file_without_torch_is_a_clear_error(tmp_path):
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here: the .pt path is used, not refused")
    path = tmp_path / "ViT-B-32.pt"
    path.write_bytes(b"not read")
    with pytest.raises(ImportError, match=r"needs torch.*\.safetensors"):
        read_state_dict(str(path))


def test_unknown_format_and_missing_file_are_refused(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown checkpoint format"):
        read_state_dict(str(path))
    with pytest.raises(FileNotFoundError):
        read_state_dict(str(tmp_path / "absent.safetensors"))


def test_wrong_architecture_lists_missing_and_unused_names():
    """ResNet weights offered to a ViT model: both lists name real keys."""
    golden = np.load(golden_paths("vit")[1])
    model = clip_from_preset(preset_from_open_clip_config(json.loads(str(golden["config_json"])), quick_gelu=True))
    state = read_safetensors(golden_paths("rn")[0])
    with pytest.raises(ValueError, match=r"missing \d+ \['visual\.conv1\.weight'|unused \d+ \['visual\.attnpool"):
        convert_open_clip_state(state, model)


def test_leff_model_takes_clip_weights():
    """Converting into a LeFF ViT: every CLIP weight is used, only the depth-wise convs keep their init.

    (The embeddings differ from plain CLIP's even with identity convs: the class token bypasses LeFF.)
    """
    weights_path, golden_path = golden_paths("vit")
    golden = np.load(golden_path)
    preset = preset_from_open_clip_config(json.loads(str(golden["config_json"])), quick_gelu=True)
    model = clip_from_preset(preset, leff=True, f1_layers=2)
    state = read_state_dict(weights_path)
    converted = convert_open_clip_state(state, model)
    assert kept_at_init(model) == [f"visual.resblocks.{i}.mlp.dwconv.{p}" for i in (0, 1) for p in ("bias", "weight")]
    np.testing.assert_array_equal(converted["visual.resblocks.1.mlp.c_fc.weight"],
                                  state["visual.transformer.resblocks.1.mlp.c_fc.weight"])
    load_weights(model, converted)  # strict: every parameter present with its shape


def _registry_builds_clip_towers():
    from mindclip.models.registry import ImageConfig

    return "tower" in {f.name for f in dataclasses.fields(ImageConfig)}


GOLDEN_RN_OVERRIDES = ["embed_dim=32", "text.context_length=16", "text.vocab_size=100", "text.width=16",
                       "text.heads=2", "text.act=quick_gelu"]  # tiny_rn's image tower is the golden's already


@pytest.mark.skipif(not _registry_builds_clip_towers(),
                    reason="the registry does not build image.backbone modified_resnet / vit yet (ImageConfig.tower)")
def test_tools_convert_then_create_model_matches_open_clip(tmp_path):
    tool = load_tool("convert")
    weights_path, golden_path = golden_paths("rn")
    output = str(tmp_path / "rn.ckpt")
    argv = [weights_path, "--model", "tiny_rn", "--output", output]
    for override in GOLDEN_RN_OVERRIDES:
        argv += ["--set", override]
    assert tool.main(argv) == output
    overrides = dict(parse_override(o) for o in GOLDEN_RN_OVERRIDES)
    model = mindclip.create_model("tiny_rn", checkpoint=output, **overrides)
    model.set_train(False)
    golden = np.load(golden_path)
    image, text = RawEmbeddings(model)(ms.Tensor(golden["images"]), ms.Tensor(golden["tokens"]))
    np.testing.assert_allclose(image.asnumpy(), golden["image_features"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(text.asnumpy(), golden["text_features"], rtol=0, atol=TOLERANCE)
