"""LightCLIPPretrain: output shapes, heads against NumPy, gather-first fusion, gradients, flags."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import nn

from mindclip.models import create_model
from mindclip.models.lightclip import LightCLIPPretrain, gather_positions
from mindclip.tokenizer import EOT_ID, MASK_ID, SOT_ID

NAME = "tiny_resnet18"
BATCH, LENGTH, K = 3, 16, 4
VOCAB = MASK_ID + 1


def make_batch(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((BATCH, 3, 64, 64)).astype(np.float32)
    tokens = np.zeros((BATCH, LENGTH), np.int32)
    tokens[:, 0] = SOT_ID
    tokens[:, 1:9] = rng.integers(1, 49000, (BATCH, 8))
    tokens[:, 9] = EOT_ID
    positions = np.stack([rng.choice(np.arange(1, 9), K, replace=False) for _ in range(BATCH)]).astype(np.int32)
    mlm_tokens = tokens.copy()
    mlm_tokens[np.arange(BATCH)[:, None], positions] = MASK_ID
    return images, tokens, mlm_tokens, positions


class Probe(nn.Cell):
    """The pre-training outputs plus independent pieces to check them against, in one graph."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, images, tokens, mlm_tokens, positions):
        outputs = self.net(images, tokens, mlm_tokens, positions)
        clip = self.net.clip
        stages = clip.visual.forward_stages(images)
        _, (_, t2, t3, t4) = clip.text.forward_tokens(mlm_tokens)
        # the fusion on every position, gathered afterwards (the cell gathers first)
        fused2 = gather_positions(self.net.fusion2(t2, stages[1]), positions)
        fused3 = gather_positions(self.net.fusion3(t3, stages[2]), positions)
        references = (clip.encode_image(images), clip.encode_text(tokens), t4, stages[3],
                      clip.text.forward_tokens(tokens)[0], fused2, fused3)
        return outputs, references


class WeightedSum(nn.Cell):
    """sum_i <output_i, fixed random weights_i>: every output reaches the loss."""

    def __init__(self, net, weights):
        super().__init__()
        self.net = net
        self.weights = weights

    def construct(self, images, tokens, mlm_tokens, positions):
        outputs = self.net(images, tokens, mlm_tokens, positions)
        loss = 0.0
        for output, weight in zip(outputs, self.weights):
            loss = loss + (output * weight).sum()
        return loss


@pytest.fixture(scope="module")
def net():
    ms.set_seed(0)
    model = LightCLIPPretrain(create_model(NAME, **{"text.vocab_size": VOCAB}))
    model.set_train(False)
    return model


@pytest.fixture(scope="module")
def probed(net):
    batch = make_batch()
    # Train mode: in eval mode MindSpore merges the two identical ResNet passes of this graph and
    # mindcv's in-place `out += identity` then runs twice on the shared buffer (wrong references).
    net.set_train(True)
    outputs, references = Probe(net)(*[ms.Tensor(x) for x in batch])
    net.set_train(False)
    return batch, [o.asnumpy() for o in outputs], [r.asnumpy() for r in references]


def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def head(cell, x):
    return layer_norm(x, cell.ln.weight.asnumpy(), cell.ln.bias.asnumpy()) @ cell.fc.weight.asnumpy().T \
        + cell.fc.bias.asnumpy()


def test_output_shapes(net, probed):
    _, outputs, _ = probed
    embed = net.clip.embed_dim
    assert [o.shape for o in outputs] == [(BATCH, embed), (BATCH, embed), (), (BATCH, 4, embed),
                                          (BATCH, LENGTH, embed), (BATCH, K, VOCAB), (BATCH, K, VOCAB)]


def test_global_features_equal_the_clip_encoders(probed):
    _, outputs, references = probed
    np.testing.assert_allclose(outputs[0], references[0], atol=1e-6)
    np.testing.assert_allclose(outputs[1], references[1], atol=1e-6)
    np.testing.assert_allclose(outputs[2], 1 / 0.07, rtol=1e-6)


def test_token_outputs_against_numpy(net, probed):
    _, outputs, references = probed
    last_map, final = references[3], references[4]
    grid_tokens = last_map.reshape(BATCH, last_map.shape[1], -1).transpose(0, 2, 1)  # row-major grid order
    np.testing.assert_allclose(outputs[3], grid_tokens @ net.image_token_proj.weight.asnumpy().T, atol=1e-5)
    np.testing.assert_allclose(outputs[4], final @ net.clip.text.text_projection.asnumpy(), atol=1e-5)


def test_mlm_text_head_reads_stage_4_of_the_masked_text_at_the_positions(net, probed):
    (_, _, _, positions), outputs, references = probed
    stage4 = references[2][np.arange(BATCH)[:, None], positions]  # (B, K, W)
    np.testing.assert_allclose(outputs[5], head(net.mlm_text_head, stage4), atol=1e-4)


def test_fuse_head_gathering_first_equals_fusing_every_position(net, probed):
    _, outputs, references = probed
    fused = np.concatenate([references[5], references[6]], axis=-1)  # (B, K, 2W)
    np.testing.assert_allclose(outputs[6], head(net.mlm_fuse_head, fused), atol=1e-4)


def test_every_trainable_parameter_gets_a_gradient(net):
    batch = [ms.Tensor(x) for x in make_batch(seed=1)]
    rng = np.random.default_rng(2)
    shapes = [(BATCH, 32), (BATCH, 32), (), (BATCH, 4, 32), (BATCH, LENGTH, 32), (BATCH, K, VOCAB), (BATCH, K, VOCAB)]
    weights = tuple(ms.Tensor(rng.standard_normal(s).astype(np.float32)) for s in shapes)
    net.set_train(True)
    grad_fn = ms.value_and_grad(WeightedSum(net, weights), None, net.trainable_params())
    loss, grads = grad_fn(*batch)
    net.set_train(False)
    names = [name for name, p in net.parameters_and_names() if p.requires_grad]
    zero = [name for name, g in zip(names, grads) if not np.any(g.asnumpy())]
    assert np.isfinite(loss.asnumpy()) and not zero, f"no gradient: {zero}"
    assert any(n.startswith("fusion2.") for n in names) and any(n.startswith("mlm_fuse_head.") for n in names)


def test_disabled_paths_return_zeros_of_the_documented_shapes():
    ms.set_seed(0)
    net = LightCLIPPretrain(create_model(NAME), token_loss=False, mlm=False)
    assert not any(name.startswith(("image_token_proj", "fusion", "mlm_")) for name, _ in net.parameters_and_names())
    images, tokens, mlm_tokens, positions = [ms.Tensor(x) for x in make_batch()]
    outputs = net(images, tokens, mlm_tokens, positions)
    assert [o.shape for o in outputs[3:]] == [(BATCH, 4, 32), (BATCH, LENGTH, 32), (BATCH, K, VOCAB),
                                              (BATCH, K, VOCAB)]
    assert not any(np.any(o.asnumpy()) for o in outputs[3:])


def test_mlm_needs_the_mask_row():
    with pytest.raises(ValueError, match=r"49409 rows.*text.vocab_size': 49409"):
        LightCLIPPretrain(create_model(NAME))

