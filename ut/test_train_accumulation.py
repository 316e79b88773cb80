"""Exact contrastive accumulation: K micro-batches give the loss and gradients of one K-times batch.

The reference is the K = 1 step on the whole batch; both run the trainer's own step
(`build_train_step`) with AdamW replaced by `GradientCapture`, which keeps the gradients the step
would apply (after unscaling, reduction and the finite check). Models without BatchNorm
(`tiny_vit`, `tiny_swin`, `tiny_vit_leff`), so that a micro-batch's features do not depend on the
other samples of its batch.
"""
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from mindclip.config import load_config, to_dict
from mindclip.data import create_dataset
from mindclip.tokenizer import EOT_ID
from mindclip.train import build_train_step
from mindclip.train.config import RunConfig
from mindclip.train.networks import build_objective

BATCH = 8  # the whole batch; K micro-batches of BATCH // K
TOLERANCE = 1e-5

_copy = ops.MultitypeFuncGraph("copy")


@_copy.register("Tensor", "Tensor")
def _copy_into(target, value):
    return ops.assign(target, value)


class GradientCapture(nn.Cell):
    """Stands in for AdamW: `optimizer(grads, lr)` keeps the gradients; no weight changes."""

    def __init__(self, params):
        super().__init__()
        self.params = ms.ParameterTuple(params)
        self.grads = self.params.clone(prefix="captured", init="zeros")
        self.hyper_map = ops.HyperMap()

    def construct(self, grads, lr):
        return self.hyper_map(_copy, self.grads, grads)

    def captured(self):
        return [g.asnumpy().copy() for g in self.grads]


def run_config(shards, method, preset, image_size, overrides=()):
    base = [f"data.train_shards={shards}/mindrecord/train-*.mindrecord", f"data.batch_size={BATCH}",
            f"data.image_size={image_size}", "data.augment=none", "data.num_workers=1", "data.context_length=32",
            f"method={method}", f"model.name={preset}"]
    return load_config(RunConfig, None, base + list(overrides), base={})


def split(batch, k):
    size = BATCH // k
    return [tuple(column[i * size:(i + 1) * size] for column in batch) for i in range(k)]


class Steps:
    """One objective, and a step per K over its weights (each step compiles its own graphs once)."""

    def __init__(self, cfg):
        ms.set_seed(0)
        self.cfg = cfg
        self.clip, self.objective = build_objective(cfg)
        self.trainable = [p for p in self.objective.model.trainable_params()]
        self.steps = {}
        self.batch = next(create_dataset(cfg.data).create_tuple_iterator(num_epochs=1))

    def run(self, k, progress, batch=None, accumulation="features"):
        if (k, accumulation) not in self.steps:
            overrides = [f"optim.accumulation_steps={k}", f"optim.accumulation={accumulation}"]
            cfg = load_config(RunConfig, None, overrides, base=to_dict(self.cfg))
            capture = GradientCapture(self.trainable)
            self.steps[k, accumulation] = (build_train_step(cfg, self.objective, optimizer=capture), capture)
        step, capture = self.steps[k, accumulation]
        result = step(1e-3, progress, split(batch or self.batch, k))
        assert result.finite
        return result, capture.captured()


def assert_same(result, grads, reference, reference_grads, label):
    np.testing.assert_allclose(result.parts, reference.parts, rtol=0, atol=TOLERANCE, err_msg=label)
    assert abs(result.loss - reference.loss) <= TOLERANCE, (label, result.loss, reference.loss)
    worst = max(float(np.abs(a - b).max()) for a, b in zip(grads, reference_grads))
    assert worst <= TOLERANCE, (label, worst)
    live = sum(float(np.abs(g).max()) > 1e-6 for g in reference_grads)
    assert live >= 0.9 * len(reference_grads), (label, live, len(reference_grads))  # real gradients


@pytest.fixture(scope="module")
def lightclip_steps(tiny_demo):
    return Steps(run_config(tiny_demo, "lightclip", "tiny_swin", 64))


@pytest.mark.parametrize("progress, regime", [(0.1, "one-hot"), (0.5, "smoothed"), (0.8, "importance")])
def test_lightclip_micro_batches_equal_the_whole_batch(lightclip_steps, progress, regime):
    reference, reference_grads = lightclip_steps.run(1, progress)
    assert np.all(reference.parts > 0.01), reference.parts  # token alignment and both MLM parts are live
    for k in (2, 4):
        result, grads = lightclip_steps.run(k, progress)
        assert_same(result, grads, reference, reference_grads, f"lightclip {regime} K={k}")


def test_lightclip_per_sample_parts_average_over_the_whole_batch(lightclip_steps):
    """Micro-batches with different numbers of MLM positions and worded captions still average exactly."""
    images, tokens, mlm_tokens, positions, labels = [c.asnumpy() for c in lightclip_steps.batch]
    labels = labels.copy()
    labels[:4, 1:] = -100  # the first micro-batch (K=2) keeps one MLM label per caption, the second all
    tokens = tokens.copy()
    tokens[0, 1:] = np.where(tokens[0, 1:] == EOT_ID, EOT_ID, 0)  # caption 0: no word left
    uneven = tuple(ms.Tensor(a) for a in (images, tokens, mlm_tokens, positions, labels))
    reference, reference_grads = lightclip_steps.run(1, 0.8, uneven)
    result, grads = lightclip_steps.run(2, 0.8, uneven)
    assert_same(result, grads, reference, reference_grads, "lightclip uneven counts K=2")
    # gradient accumulation, kept on request, trains the mean of two batch-4 losses: another objective
    averaged, averaged_grads = lightclip_steps.run(2, 0.8, uneven, accumulation="gradients")
    assert np.abs(averaged.parts - reference.parts).max() > 100 * TOLERANCE
    assert max(float(np.abs(a - b).max()) for a, b in zip(averaged_grads, reference_grads)) > 100 * TOLERANCE


def test_clip_micro_batches_equal_the_whole_batch(tiny_demo):
    steps = Steps(run_config(tiny_demo, "clip", "tiny_vit", 32))
    reference, reference_grads = steps.run(1, 0.0)
    for k in (2, 4):
        result, grads = steps.run(k, 0.0)
        assert_same(result, grads, reference, reference_grads, f"clip K={k}")


def test_pyramidclip_micro_batches_equal_the_whole_batch(pyramid_demo):
    steps = Steps(run_config(pyramid_demo, "pyramidclip", "tiny_vit_leff", 32))
    reference, reference_grads = steps.run(1, 0.0)
    for k in (2, 4):
        result, grads = steps.run(k, 0.0)
        assert_same(result, grads, reference, reference_grads, f"pyramidclip K={k}")


def test_recompute_gives_the_same_loss_and_gradients(lightclip_steps, tiny_demo):
    """Every block of both towers, the fusion blocks and the MLM heads recomputed in the backward."""
    recomputed = Steps(run_config(tiny_demo, "lightclip", "tiny_swin", 64, ["train.recompute=all"]))
    reference, reference_grads = lightclip_steps.run(1, 0.8)
    result, grads = recomputed.run(1, 0.8)  # build_train_step marks the blocks
    units = [cell for _, cell in recomputed.objective.model.cells_and_names() if cell._has_config_recompute]
    assert len(units) >= 12 + 4 + 2 + 2, len(units)  # 12 Swin blocks, 4 text blocks, 2 fusion, 2 MLM heads
    assert_same(result, grads, reference, reference_grads, "lightclip recompute=all")
