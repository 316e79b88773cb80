"""CLIP models from the registry: shapes, stage taps, gradients, parameter counts, text truncation, errors."""
import numpy as np
import pytest
from scipy.special import erf
import mindspore as ms
from mindspore import nn, ops

from mindclip.config import ConfigError
from mindclip.models import TextEncoder, create_model, get_model_config, list_models
from mindclip.models.layers import LayerNorm, l2_normalize, make_activation
from mindclip.tokenizer import EOT_ID, SOT_ID, VOCAB_SIZE

TINY = ["tiny_mobilenetv2", "tiny_resnet18", "tiny_swin"]
FULL = ["lightclip_mobilenetv2", "lightclip_resnet18", "lightclip_swin_nano"]
BATCH = 4


def make_tokens(batch, length=77, seed=0):
    """[SOT, random word ids, EOT, 0...] rows with different lengths (EOT at 3, 7, 11, ...)."""
    rng = np.random.default_rng(seed)
    tokens = np.zeros((batch, length), np.int32)
    for row in range(batch):
        eot = min(3 + 4 * row, length - 1)
        tokens[row, 0] = SOT_ID
        tokens[row, 1:eot] = rng.integers(1, 49000, eot - 1)
        tokens[row, eot] = EOT_ID
    return tokens


def make_images(size, batch=BATCH, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)


class ContrastiveProbe(nn.Cell):
    """Symmetric InfoNCE on the CLIP's features, built from the stage taps (one pass per tower).

    Returns the loss, then the features and every tap as auxiliary outputs. `CLIP.construct` itself
    is compared with these pieces in test_weights.py.
    """

    def __init__(self, clip):
        super().__init__()
        self.clip = clip

    def construct(self, images, tokens, labels):
        image_stages = self.clip.visual.forward_stages(images)  # 4 x (B, C_i, H_i, W_i)
        final, text_stages = self.clip.text.forward_tokens(tokens)  # (B, L, W), 4 x (B, L, W)
        image_features = l2_normalize(self.clip.visual.pool(image_stages[3]))  # (B, E)
        text_features = l2_normalize(self.clip.text.pool(final, tokens))  # (B, E)
        scale = ops.exp(self.clip.logit_scale)
        logits = scale * ops.matmul(image_features, text_features.T)  # (B, B)
        loss = (ops.cross_entropy(logits, labels) + ops.cross_entropy(logits.T, labels)) / 2
        return loss, image_features, text_features, scale, image_stages, final, text_stages


@pytest.fixture(scope="module", params=TINY)
def tiny_run(request):
    """One compiled forward + backward per tiny preset, shared by the tests below."""
    ms.set_seed(0)
    model = create_model(request.param)
    model.set_train(True)
    probe = ContrastiveProbe(model)
    weights = model.trainable_params()
    grad_fn = ms.value_and_grad(probe, None, weights, has_aux=True)
    size = model.config.image.image_size
    images, tokens = make_images(size), make_tokens(BATCH)
    (loss, *aux), grads = grad_fn(ms.Tensor(images), ms.Tensor(tokens), ms.Tensor(np.arange(BATCH, dtype=np.int32)))
    names = [name for name, p in model.parameters_and_names() if p.requires_grad]
    return {"name": request.param, "model": model, "loss": loss.asnumpy(), "aux": aux,
            "grads": dict(zip(names, [g.asnumpy() for g in grads])), "tokens": tokens}


def test_every_stage_tap_has_the_documented_shape(tiny_run):
    model = tiny_run["model"]
    image_features, text_features, scale, image_stages, final, text_stages = tiny_run["aux"]
    size, text = model.config.image.image_size, model.config.text
    for i, (stage, channels) in enumerate(zip(image_stages, model.visual.stage_channels)):
        side = size // 2 ** (i + 2)  # strides 4, 8, 16, 32
        assert stage.shape == (BATCH, channels, side, side)
    assert final.shape == (BATCH, 77, text.width)
    assert [s.shape for s in text_stages] == [(BATCH, 77, text.width)] * 4
    assert image_features.shape == text_features.shape == (BATCH, model.config.embed_dim)
    assert scale.shape == ()
    np.testing.assert_allclose(scale.asnumpy(), 1 / 0.07, rtol=1e-6)


def test_features_equal_a_numpy_recomputation_from_the_stage_taps(tiny_run):
    model = tiny_run["model"]
    image_features, text_features, _, image_stages, final, _ = tiny_run["aux"]
    pooled = image_stages[3].asnumpy().mean(axis=(2, 3)) @ model.visual.proj.weight.asnumpy().T
    expected_image = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    np.testing.assert_allclose(image_features.asnumpy(), expected_image, atol=1e-5)
    eot = tiny_run["tokens"].argmax(axis=1)
    eot_rows = final.asnumpy()[np.arange(BATCH), eot] @ model.text.text_projection.asnumpy()
    expected_text = eot_rows / np.linalg.norm(eot_rows, axis=1, keepdims=True)
    np.testing.assert_allclose(text_features.asnumpy(), expected_text, atol=1e-5)


def test_every_trainable_parameter_gets_a_gradient(tiny_run):
    assert np.isfinite(tiny_run["loss"])
    zero = [name for name, g in tiny_run["grads"].items() if not np.any(g)]
    assert not zero, f"{tiny_run['name']}: parameters without gradient: {zero}"
    assert len(tiny_run["grads"]) == len(tiny_run["model"].trainable_params())


def test_text_tower_on_a_truncated_length_equals_the_full_context():
    ms.set_seed(1)
    model = create_model("tiny_mobilenetv2")
    encoder = TextEncoder(model, normalize=False)
    tokens = make_tokens(BATCH)  # EOT at most at position 15
    full = encoder(ms.Tensor(tokens)).asnumpy()
    short = encoder(ms.Tensor(tokens[:, :16])).asnumpy()
    assert np.abs(full - short).max() <= 1e-5, np.abs(full - short).max()


def _count(cell, trainable_only=True):
    params = cell.trainable_params() if trainable_only else cell.get_parameters()
    return sum(int(np.prod(p.shape)) for p in params)


@pytest.mark.parametrize("name", FULL)
def test_full_size_presets_have_the_expected_parameter_counts(name):
    model = create_model(name)
    width, layers, vocab, context, embed = 512, 8, VOCAB_SIZE, 77, 512
    per_block = 12 * width ** 2 + 13 * width  # qkv + out + 2 MLP matrices, their biases, 2 LayerNorms
    text = vocab * width + context * width + layers * per_block + 2 * width + width * embed
    assert _count(model.text) == text
    channels = model.visual.stage_channels[3]
    assert _count(model.visual) == _count(model.visual.backbone) + channels * embed
    assert _count(model) == _count(model.visual) + text + 1
    assert model.visual.image_size == 224 and model.text.num_layers == 8


def test_list_models_holds_every_preset():
    assert set(TINY + FULL) <= set(list_models())
    for name in list_models():
        config = get_model_config(name)
        assert config.embed_dim > 0 and config.text.layers % 4 == 0


def test_overrides_dotted_and_nested():
    config = get_model_config("tiny_swin", **{"text.layers": 8}, image={"image_size": 128})
    assert config.text.layers == 8 and config.image.image_size == 128
    assert config.image.window_size == 4 and config.text.width == 64


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'tiny_convnext'.*tiny_resnet18"):
        create_model("tiny_convnext")


@pytest.mark.parametrize("overrides, message", [
    ({"text.depth": 4}, r"tiny_resnet18.*unknown key 'text.depth'"),
    ({"text": {"layers": "four"}}, r"tiny_resnet18.*'text.layers' must be an integer"),
    ({"image.backbone": 18}, r"'image.backbone' must be a string"),
    ({"text.layers": 6}, r"layers must be a positive multiple of 4"),
])
def test_invalid_override_names_the_key_and_the_preset(overrides, message):
    with pytest.raises(ConfigError, match=message):
        get_model_config("tiny_resnet18", **overrides)


def test_backbone_options_are_checked():
    with pytest.raises(ValueError, match="window_size / drop_path_rate apply only to swin_nano"):
        create_model("tiny_resnet18", **{"image.window_size": 7})
    with pytest.raises(ValueError, match="not divisible by window_size 7"):
        create_model("tiny_swin", **{"image.window_size": 7})


def test_l2_normalize_matches_numpy():
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    expected = x / np.linalg.norm(x, axis=-1, keepdims=True)
    np.testing.assert_allclose(l2_normalize(ms.Tensor(x)).asnumpy(), expected, atol=1e-6)


def test_activations_and_layer_norm_match_numpy():
    x = np.linspace(-4, 4, 12, dtype=np.float32).reshape(3, 4)
    gelu = make_activation("gelu")(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(gelu, 0.5 * x * (1 + erf(x / np.sqrt(2))), atol=1e-6)  # exact, not tanh
    quick = make_activation("quick_gelu")(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(quick, x / (1 + np.exp(-1.702 * x)), atol=1e-6)
    small = x * 1e-3  # variance ~1e-6: an eps of 1e-7 instead of 1e-5 would change the result
    expected = (small - small.mean(-1, keepdims=True)) / np.sqrt(small.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(LayerNorm(4)(ms.Tensor(small)).asnumpy(), expected, atol=1e-5)
