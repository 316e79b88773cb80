"""PyramidCLIP training: the pre-training network against direct computations, the objective against a
NumPy re-computation, and a few graph-mode train steps that lower every part of the loss.

Data: the built-in demo set with ROI stand-ins (`make_demo_data(..., pyramid=True)`), the session fixture `pyramid_demo`.
"""

import numpy as np
import pytest

import mindclip  # noqa: F401  (sets the oneDNN cap before mindspore loads)
import mindspore as ms
from scipy.special import logsumexp

from mindclip.config import load_config
from mindclip.data import create_dataset
from mindclip.models import create_model
from mindclip.models.pyramid import PyramidCLIPPretrain, has_batch_norm
from mindclip.models.roi import ROI_DIM
from mindclip.train.checkpoint import weight_names
from mindclip.train.config import RunConfig
from mindclip.train.networks import build_objective
from mindclip.train import build_train_step

BATCH = 8
ALPHA = 0.2
PRESET_SIZES = {"tiny_vit_leff": 32, "tiny_rn": 64}  # preset -> its image side


def run_config(data_dir, preset, overrides=()):
    base = [f"data.train_shards={data_dir}/mindrecord/train-*.mindrecord", f"data.batch_size={BATCH}",
            f"data.image_size={PRESET_SIZES[preset]}", "data.augment=simclr", "data.num_workers=1",
            "data.context_length=32", "method=pyramidclip", f"model.name={preset}", f"loss.pyramid_alpha={ALPHA}"]
    return load_config(RunConfig, None, base + list(overrides), base={})


def first_batch(cfg):
    return next(create_dataset(cfg.data).create_tuple_iterator(num_epochs=1))


def numpy_smoothed_infonce(image, text, scale, alpha):
    """Symmetric InfoNCE, targets 1-alpha on the positive and alpha/(N-1) on each negative (paper eq. 3-5)."""
    logits = scale * image.astype(np.float64) @ text.astype(np.float64).T
    n = len(logits)
    targets = np.full((n, n), alpha / (n - 1))
    np.fill_diagonal(targets, 1 - alpha)

    def cross_entropy(rows):
        return -(targets * (rows - logsumexp(rows, axis=1, keepdims=True))).sum(axis=1).mean()

    return (cross_entropy(logits) + cross_entropy(logits.T)) / 2


def numpy_pyramid_parts(v_global, v_local, v_roi, t_text, t_summary, scale, alpha):
    """(L_GS, L_LT, L_RS, L_RT) over the pairs of DESIGN.md."""
    pairs = ((v_global, t_summary), (v_local, t_text), (v_roi, t_summary), (v_roi, t_text))
    return np.array([numpy_smoothed_infonce(v, t, scale, alpha) for v, t in pairs])


def random_roi(batch, num_rois, counts, seed=0):
    """ROI inputs as the pipeline pads them: `counts[i]` random rows, zeros after."""
    rng = np.random.default_rng(seed)
    roi = np.zeros((batch, num_rois, ROI_DIM), np.float32)
    for i, count in enumerate(counts):
        roi[i, :count] = rng.standard_normal((count, ROI_DIM))
    return ms.Tensor(roi), ms.Tensor(np.asarray(counts, np.int32))


def as_numpy(outputs):
    return [o.asnumpy() for o in outputs]


class DirectEncodings(ms.nn.Cell):
    """The five features the long way: each input alone through the CLIP's public encoders and the ROI encoder."""

    def __init__(self, net):
        super().__init__()
        self.clip = net.clip
        self.roi = net.roi

    def construct(self, image_global, image_local, tokens, summary_tokens, roi, roi_count):
        return (self.clip.encode_image(image_global), self.clip.encode_image(image_local), self.roi(roi, roi_count),
                self.clip.encode_text(tokens), self.clip.encode_text(summary_tokens))


def pyramid_batch(cfg):
    """A pipeline batch whose ROI columns are replaced by varied counts (the demo data has 1 ROI each)."""
    batch = first_batch(cfg)
    return tuple(batch[:4]) + random_roi(BATCH, cfg.data.roi_max, [3, 0, 10, 1, 7, 2, 0, 5])


def check_against_direct(net, outputs, batch):
    expected = as_numpy(DirectEncodings(net)(*batch))
    names = ("v_global", "v_local", "v_roi", "t_text", "t_summary")
    for name, got, want in zip(names, outputs[:5], expected):
        assert got.shape == (BATCH, net.clip.embed_dim), name
        np.testing.assert_allclose(got, want, atol=2e-5, err_msg=name)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5, err_msg=name)
    assert not np.allclose(outputs[0], outputs[1], atol=1e-3)  # the two views really differ
    np.testing.assert_allclose(outputs[5], np.exp(net.clip.logit_scale.asnumpy()), rtol=1e-6)
    return expected


@pytest.fixture(scope="module")
def vit_training(pyramid_demo):
    """ViT (no BatchNorm): objective, optimizer, step, one fixed batch and the initial network outputs."""
    cfg = run_config(pyramid_demo, "tiny_vit_leff")
    ms.set_seed(0)
    clip, objective = build_objective(cfg)
    step = build_train_step(cfg, objective)
    batch = pyramid_batch(cfg)
    initial = as_numpy(objective.model(*batch))  # before any step
    return batch, clip, objective, step.optimizer, step, initial


# ---------------------------------------------------------------- the pre-training network

def test_vit_views_run_as_one_batch_and_equal_direct_encodings(vit_training):
    batch, _, objective, _, _, initial = vit_training
    assert objective.model.concat_views and not has_batch_norm(objective.model.clip.visual)
    check_against_direct(objective.model, initial, batch)


def test_resnet_views_run_separately_because_of_batchnorm(pyramid_demo):
    """Training mode: each output equals encoding its input alone; one 2B batch would change v_global."""
    cfg = run_config(pyramid_demo, "tiny_rn")
    batch = pyramid_batch(cfg)
    ms.set_seed(0)
    net = PyramidCLIPPretrain(create_model("tiny_rn"))
    net.set_train(True)
    assert has_batch_norm(net.clip.visual) and not net.concat_views
    expected = check_against_direct(net, as_numpy(net(*batch)), batch)
    concatenated = PyramidCLIPPretrain(net.clip, concat_views=True)
    concatenated.set_train(True)
    v_global = concatenated(*batch)[0].asnumpy()
    assert np.abs(v_global - expected[0]).max() > 1e-3  # statistics pooled over both views


def test_refuses_a_tower_without_f2():
    with pytest.raises(ValueError, match="f1/f2 split"):
        PyramidCLIPPretrain(create_model("tiny_mobilenetv2"))


# ---------------------------------------------------------------- the objective and the train step

def test_roi_weights_are_the_only_pretrain_entries(vit_training):
    _, clip, objective, optimizer, _, _ = vit_training
    names = weight_names(objective.model, clip)
    pretrain = sorted(names[id(p)] for _, p in objective.model.parameters_and_names()
                      if names[id(p)].startswith("pretrain."))
    assert pretrain == ["pretrain.roi.class_embedding", "pretrain.roi.proj.bias", "pretrain.roi.proj.weight"]
    assert len(optimizer.params) == len(clip.trainable_params()) + 3  # the tower is not listed twice


def test_graph_steps_lower_every_part(vit_training):
    """8 steps on one fixed batch; step 1's parts equal a NumPy re-computation from the initial features."""
    batch, _, objective, _, step, initial = vit_training
    expected_first = numpy_pyramid_parts(*initial[:5], float(initial[5]), ALPHA)
    history = []
    for _ in range(8):
        result = step(2e-3, 0.5, [batch])
        assert result.finite
        np.testing.assert_allclose(result.loss, 0.25 * result.parts.sum(), rtol=1e-5)
        history.append(result.parts)
    history = np.array(history)
    np.testing.assert_allclose(history[0], expected_first, rtol=1e-4)
    assert objective.part_names == ("global_summary", "local_text", "roi_summary", "roi_text")
    for i, name in enumerate(objective.part_names):
        assert history[-1, i] < history[0, i] - 0.05, f"{name} did not fall: {history[:, i]}"
