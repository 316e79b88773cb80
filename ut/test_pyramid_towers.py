"""CLIP's ModifiedResNet and ViT (with LeFF), the f = f2 ∘ f1 split and PyramidCLIP's ROI path.

Parity of both towers with open_clip is in `test_convert.py`; here: shapes, LeFF against a NumPy
re-computation, the class token bypassing LeFF, ROI padding, and where the ROI gradient goes.
"""
import os

import numpy as np
import pytest
from scipy.special import erf

import mindclip  # noqa: F401  (sets the oneDNN cap before mindspore loads)
import mindspore as ms
from mindspore import nn

from mindclip.config import ConfigError, read_yaml
from mindclip.export.mindir import load_tower
from mindclip.models.clip_image_towers import build_clip_tower, tower_options
from mindclip.models.layers import MLP
from mindclip.models.modified_resnet import ModifiedResNet
from mindclip.models.registry import CONFIG_DIR
from mindclip.models.roi import ROI_DIM, RoiEncoder
from mindclip.models.vit import LeFF, LeFFBlock, VisionTransformer

BATCH, EMBED, NUM_ROIS = 2, 16, 5
ROI_COUNTS = np.array([3, 0], np.int32)  # sample 0: rows 0-2 valid; sample 1: only padding


class TowerOutputs(nn.Cell):
    """Every output of a tower's interface in one graph: 4 stages, f1 tokens, the embedding."""

    def __init__(self, tower):
        super().__init__()
        self.tower = tower

    def construct(self, images):
        stages = self.tower.forward_stages(images)
        return stages + (self.tower.forward_f1(images), self.tower(images))


@pytest.fixture(scope="module")
def towers():
    ms.set_seed(0)
    resnet = ModifiedResNet(layers=(1, 1, 1, 1), width=8, heads=4, embed_dim=EMBED, image_size=64)
    vit = VisionTransformer(image_size=32, patch_size=8, width=32, layers=4, heads=2, embed_dim=EMBED,
                            f1_layers=3, leff=True)
    for tower in (resnet, vit):
        tower.set_train(False)
    return {"resnet": resnet, "vit": vit}


def test_modified_resnet_shapes(towers):
    images = ms.Tensor(np.random.default_rng(0).standard_normal((BATCH, 3, 64, 64)), ms.float32)
    outputs = [o.shape for o in TowerOutputs(towers["resnet"])(images)]
    assert towers["resnet"].stage_channels == (32, 64, 128, 256)
    assert outputs == [(BATCH, 32, 16, 16), (BATCH, 64, 8, 8), (BATCH, 128, 4, 4), (BATCH, 256, 2, 2),
                       (BATCH, 1 + 4, 256), (BATCH, EMBED)]


def test_vit_shapes_and_leff_placement(towers):
    vit = towers["vit"]
    images = ms.Tensor(np.random.default_rng(0).standard_normal((BATCH, 3, 32, 32)), ms.float32)
    outputs = [o.shape for o in TowerOutputs(vit)(images)]
    assert vit.stage_channels == (32,) * 4
    assert outputs == [(BATCH, 32, 4, 4)] * 4 + [(BATCH, 1 + 16, 32), (BATCH, EMBED)]
    assert [isinstance(b, LeFFBlock) for b in vit.resblocks] == [True, True, True, False]  # LeFF only in f1


def test_leff_vit_exports_with_a_dynamic_batch(towers, tmp_path):
    """LeFF reshapes tokens to the patch grid: the exported graph must still take any batch size."""
    vit = towers["vit"]
    path = str(tmp_path / "leff_vit")
    ms.export(vit, ms.Tensor(shape=[None, 3, 32, 32], dtype=ms.float32), file_name=path, file_format="MINDIR")
    cell = load_tower(path + ".mindir", [None, 3, 32, 32], ms.float32)
    images = np.random.default_rng(9).standard_normal((3, 3, 32, 32)).astype(np.float32)
    expected = vit(ms.Tensor(images)).asnumpy()
    for batch in (1, 3):
        np.testing.assert_allclose(cell(ms.Tensor(images[:batch])).asnumpy(), expected[:batch], rtol=0, atol=1e-5)


def _gelu(x):
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def _depthwise_conv3x3(grid, kernel, bias):
    """grid (B, C, G, G), kernel (C, 1, 3, 3), zero padding 1 -> (B, C, G, G)."""
    padded = np.pad(grid, ((0, 0), (0, 0), (1, 1), (1, 1)))
    side = grid.shape[2]
    out = np.zeros_like(grid)
    for dy in range(3):
        for dx in range(3):
            out += padded[:, :, dy:dy + side, dx:dx + side] * kernel[None, :, 0, dy, dx, None, None]
    return out + bias[None, :, None, None]


def _randomize(cell, rng):
    for _, param in cell.parameters_and_names():
        param.set_data(ms.Tensor(rng.standard_normal(param.shape).astype(np.float32) * 0.5))


def test_leff_matches_numpy_and_the_class_row_is_zero():
    rng = np.random.default_rng(1)
    width, hidden, grid = 8, 12, 3
    leff = LeFF(width, hidden, grid, act="gelu")
    _randomize(leff, rng)
    x = rng.standard_normal((BATCH, 1 + grid * grid, width)).astype(np.float32)
    out = leff(ms.Tensor(x)).asnumpy()
    p = {name: param.asnumpy() for name, param in leff.parameters_and_names()}
    up = x[:, 1:] @ p["c_fc.weight"].T + p["c_fc.bias"]  # (B, G*G, Hd), row-major patch order
    maps = up.transpose(0, 2, 1).reshape(BATCH, hidden, grid, grid)
    maps = _gelu(_depthwise_conv3x3(maps, p["dwconv.weight"], p["dwconv.bias"]))
    expected = maps.reshape(BATCH, hidden, grid * grid).transpose(0, 2, 1) @ p["c_proj.weight"].T + p["c_proj.bias"]
    np.testing.assert_allclose(out[:, 1:], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(out[:, 0], 0.0)


def test_leff_ignores_the_class_token_and_starts_as_the_mlp():
    """Fresh LeFF (identity depth-wise conv) = the MLP with the same Dense weights, on the patches."""
    rng = np.random.default_rng(2)
    leff, mlp = LeFF(8, 16, 2, act="quick_gelu"), MLP(8, 16, act="quick_gelu")
    for name in ("c_fc.weight", "c_fc.bias", "c_proj.weight", "c_proj.bias"):
        value = rng.standard_normal(dict(leff.parameters_and_names())[name].shape).astype(np.float32)
        for cell in (leff, mlp):
            dict(cell.parameters_and_names())[name].set_data(ms.Tensor(value))
    x = rng.standard_normal((BATCH, 5, 8)).astype(np.float32)
    moved = x.copy()
    moved[:, 0] += 10.0
    out, out_moved = leff(ms.Tensor(x)).asnumpy(), leff(ms.Tensor(moved)).asnumpy()
    np.testing.assert_array_equal(out, out_moved)
    np.testing.assert_allclose(out[:, 1:], mlp(ms.Tensor(x[:, 1:])).asnumpy(), rtol=1e-5, atol=1e-6)


class BlockAndAttentionOnly(nn.Cell):
    def __init__(self, block):
        super().__init__()
        self.block = block

    def construct(self, x):
        return self.block(x), x + self.block.attn(self.block.ln_1(x))


def test_leff_block_leaves_the_class_token_after_attention_untouched():
    rng = np.random.default_rng(3)
    block = LeFFBlock(16, 2, grid_size=3)
    _randomize(block, rng)
    x = ms.Tensor(rng.standard_normal((BATCH, 10, 16)).astype(np.float32))
    full, attention_only = (t.asnumpy() for t in BlockAndAttentionOnly(block)(x))
    np.testing.assert_allclose(full[:, 0], attention_only[:, 0], rtol=1e-6, atol=1e-6)
    assert np.abs(full[:, 1:] - attention_only[:, 1:]).max() > 1e-2  # the patches did go through LeFF


def _roi_inputs(seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, NUM_ROIS, ROI_DIM)).astype(np.float32)


@pytest.fixture(scope="module", params=["resnet", "vit"])
def roi_path(request, towers):
    return request.param, RoiEncoder(towers[request.param])


def test_roi_path_shapes_norm_and_padding(roi_path):
    _, encoder = roi_path
    counts = ms.Tensor(ROI_COUNTS)
    roi = _roi_inputs(4)
    out = encoder(ms.Tensor(roi), counts).asnumpy()
    assert out.shape == (BATCH, EMBED) and np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    padding_changed = roi.copy()
    padding_changed[0, 3:] = 100.0 * _roi_inputs(5)[0, 3:]  # rows past sample 0's count of 3
    padding_changed[1] = _roi_inputs(6)[1]  # sample 1 has no valid ROI at all
    np.testing.assert_allclose(encoder(ms.Tensor(padding_changed), counts).asnumpy(), out, rtol=0, atol=1e-6)
    valid_changed = roi.copy()
    valid_changed[0, 2] += 1.0  # the last valid row of sample 0
    changed = encoder(ms.Tensor(valid_changed), counts).asnumpy()
    assert np.abs(changed[0] - out[0]).max() > 1e-4
    np.testing.assert_allclose(changed[1], out[1], rtol=0, atol=1e-6)


def test_roi_encoder_owns_only_its_embedding(roi_path):
    _, encoder = roi_path
    width = encoder.proj.weight.shape[0]
    assert {n: tuple(p.shape) for n, p in encoder.parameters_and_names()} == {
        "proj.weight": (width, ROI_DIM), "proj.bias": (width,), "class_embedding": (width,)}


class RoiLoss(nn.Cell):
    def __init__(self, encoder, target):
        super().__init__()
        self.encoder = encoder
        self.target = ms.Tensor(target)

    def construct(self, roi, counts):
        return (self.encoder(roi, counts) * self.target).sum()


def test_roi_gradient_reaches_f2_and_not_f1(roi_path, towers):
    """Gradients reach the ROI embedding and f2 only: not f1, not the image position embeddings."""
    kind, encoder = roi_path
    tower = towers[kind]
    params = list(tower.trainable_params()) + list(encoder.trainable_params())
    names = [f"visual.{n}" for n, p in tower.parameters_and_names() if p.requires_grad]
    names += [f"roi.{n}" for n, _ in encoder.parameters_and_names()]
    target = np.random.default_rng(7).standard_normal((BATCH, EMBED)).astype(np.float32)
    grad_fn = ms.value_and_grad(RoiLoss(encoder, target), None, params)
    _, grads = grad_fn(ms.Tensor(_roi_inputs(8)), ms.Tensor(ROI_COUNTS))
    reached = {name for name, g in zip(names, grads) if np.abs(g.asnumpy()).max() > 0}
    f2_prefix = ("visual.attnpool.attn.",) if kind == "resnet" else (
        "visual.resblocks.3.", "visual.ln_post.", "visual.proj")
    expected = {n for n in names if n.startswith(f2_prefix) or n.startswith("roi.")}
    assert reached == expected


def _preset_files():
    return sorted(f for f in os.listdir(CONFIG_DIR) if f.startswith(("clip_", "pyramidclip_", "tiny_rn", "tiny_vit")))


@pytest.mark.parametrize("filename", _preset_files())
def test_presets_have_valid_tower_sections(filename):
    preset = read_yaml(os.path.join(CONFIG_DIR, filename))
    options = tower_options(preset["image"]["backbone"], preset["image"]["tower"], filename)
    if filename.startswith("pyramidclip_vit"):
        assert options.leff and options.f1_layers == 9 and options.layers == 12
    if filename.startswith("clip_"):
        assert options.act == "quick_gelu" if preset["image"]["backbone"] == "vit" else True
        assert preset["text"]["act"] == "quick_gelu" and preset["text"]["layers"] == 12


def test_tiny_presets_build_their_towers():
    kinds = (("tiny_rn", ModifiedResNet), ("tiny_vit", VisionTransformer), ("tiny_vit_leff", VisionTransformer))
    for name, cls in kinds:
        preset = read_yaml(os.path.join(CONFIG_DIR, name + ".yaml"))
        tower = build_clip_tower(preset["image"]["backbone"], preset["embed_dim"], preset["image"]["image_size"],
                                 preset["image"]["tower"], name)
        assert isinstance(tower, cls) and tower.embed_dim == preset["embed_dim"]
        assert any(isinstance(b, LeFFBlock) for b in getattr(tower, "resblocks", ())) == name.endswith("leff")


def test_bad_tower_options_are_refused_by_name():
    with pytest.raises(ConfigError, match=r"image\.tower\.widht"):
        tower_options("vit", {"widht": 64}, "my_preset.yaml")
    with pytest.raises(ConfigError, match="f1_layers"):
        tower_options("vit", {"layers": 4, "f1_layers": 5}, "my_preset.yaml")
    with pytest.raises(ConfigError, match="not a CLIP tower"):
        tower_options("resnet18", {}, "my_preset.yaml")
