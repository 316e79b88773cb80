"""The graph-mode train step: losses fall, overflow and non-finite steps change nothing."""

import mindspore as ms
import numpy as np
import pytest

from mindclip.config import load_config
from mindclip.data import create_dataset
from mindclip.train.config import RunConfig
from mindclip.train import build_train_step
from mindclip.train.batch_losses import BatchLoss
from mindclip.train.networks import build_objective
from mindclip.train.optim import decays_weight
from mindclip.train.schedule import warmup_cosine_lr
from mindclip.train.step import LOGIT_SCALE_MAX, StepCell


def run_config(tiny_demo, overrides):
    base = [f"data.train_shards={tiny_demo}/mindrecord/train-*.mindrecord", "data.batch_size=8",
            "data.image_size=64", "data.augment=none", "data.num_workers=1", "data.context_length=32",
            "model.name=tiny_mobilenetv2"]
    return load_config(RunConfig, None, base + overrides, base={})


def first_batch(cfg):
    return next(create_dataset(cfg.data).create_tuple_iterator(num_epochs=1))


def build_step(cfg):
    ms.set_seed(0)
    clip, objective = build_objective(cfg)
    step = build_train_step(cfg, objective)
    return clip, objective, step.optimizer, step


def weights(net):
    return {name: p.asnumpy().copy() for name, p in net.parameters_and_names()}


@pytest.fixture(scope="module")
def lightclip_step(tiny_demo):
    cfg = run_config(tiny_demo, ["method=lightclip"])  # the paper's loss weights and r1, r2 by default
    return cfg, first_batch(cfg), build_step(cfg)


def test_full_lightclip_objective_lowers_every_part(lightclip_step):
    cfg, batch, (clip, objective, _, step) = lightclip_step
    assert objective.part_weights == (0.8, 0.1, 0.05, 0.05)
    history = []
    for i in range(8):
        result = step(2e-3, 0.8, [batch])  # progress 0.8: importance-aware soft targets, the last stage
        assert result.finite
        assert abs(result.loss - float(np.dot(objective.part_weights, result.parts))) < 1e-9
        history.append(result.parts)
    history = np.array(history)
    assert objective.part_names == ("inst", "token", "mlm_text", "mlm_fuse")
    for i, name in enumerate(objective.part_names):
        assert history[-1, i] < history[0, i], f"{name} did not fall: {history[:, i]}"
    assert 0 < float(clip.logit_scale.asnumpy()) <= LOGIT_SCALE_MAX


class _PoisonableObjective(ms.nn.Cell):
    """A Dense regression whose loss is NaN when an input is NaN (CNN towers absorb NaN in ReLU6)."""

    def __init__(self):
        super().__init__()
        self.model = ms.nn.Dense(4, 3)
        self.logit_scale = ms.Parameter(ms.Tensor(2.0, ms.float32), name="logit_scale")

    def construct(self, progress, x, y):
        mse = ((self.model(x) * self.logit_scale - y) ** 2).mean()
        return mse, ms.ops.stack([mse])


def test_non_finite_loss_is_reported_not_trained_on():
    objective = _PoisonableObjective()
    names = [n for n, _ in objective.parameters_and_names()]
    params = [p for _, p in objective.parameters_and_names()]
    from mindclip.train.optim import AdamW

    optimizer = AdamW(params, [decays_weight(n, p) for n, p in zip(names, params)])
    step = StepCell(objective, optimizer, objective.logit_scale, loss_scale="none")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 4)).astype(np.float32), rng.standard_normal((8, 3)).astype(np.float32)
    args = (ms.Tensor(1e-2, ms.float32), ms.Tensor(True), ms.Tensor(0.0, ms.float32))
    loss, _, finite, _ = step(*args, ms.Tensor(x), ms.Tensor(y))
    assert bool(finite.asnumpy()) and int(optimizer.step.asnumpy()) == 1
    x[3, 1] = np.nan
    before = weights(objective)
    loss, _, finite, _ = step(*args, ms.Tensor(x), ms.Tensor(y))
    assert np.isnan(float(loss.asnumpy())) and not bool(finite.asnumpy())
    after = weights(objective)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert int(optimizer.step.asnumpy()) == 1  # AdamW's bias-correction count did not move either


def test_fp16_o2_skips_overflowing_step_then_trains(tiny_demo):
    # a loss scale of 2^40 overflows fp16 gradients on the first step; dynamic scaling halves it
    cfg = run_config(tiny_demo, ["method=clip", "train.amp_level=O2", "train.init_loss_scale=1099511627776"])
    batch = first_batch(cfg)
    clip, objective, optimizer, step = build_step(cfg)  # loss_scale "auto" is dynamic for float16
    before = weights(objective.model)
    result = step(1e-3, 0.0, [batch])
    assert not result.finite and result.loss_scale == 2.0 ** 40
    after = weights(objective.model)
    trainable = {name for name, p in objective.model.parameters_and_names() if p.requires_grad}
    assert all(np.array_equal(before[k], after[k]) for k in trainable), "an overflowing step changed weights"
    # BatchNorm running statistics move in the forward pass, skipped or not (as with torch's
    # GradScaler); the forward was finite, so they stay finite
    assert all(np.isfinite(after[k]).all() for k in after)
    assert float(step.loss_scale.asnumpy()) == 2.0 ** 39
    finite_steps = []
    losses = []
    for _ in range(40):
        result = step(1e-3, 0.0, [batch])
        finite_steps.append(result.finite)
        losses.append(result.loss)
        if sum(finite_steps) >= 4:
            break
    assert sum(finite_steps) >= 4, "the dynamic loss scale never came down to a finite step"
    weights_now = weights(objective.model)
    assert all(np.isfinite(v).all() for v in weights_now.values())
    assert any(not np.array_equal(before[k], weights_now[k]) for k in before)
    assert float(step.loss_scale.asnumpy()) < 2.0 ** 39


def test_warmup_cosine_schedule():
    lr = warmup_cosine_lr(1.0, 100, 10, min_lr=0.1)
    np.testing.assert_allclose(lr[:10], np.arange(1, 11) / 10, rtol=1e-6)
    t = (np.arange(10, 100) - 10) / 90
    np.testing.assert_allclose(lr[10:], 0.1 + 0.45 * (1 + np.cos(np.pi * t)), rtol=1e-6)
    assert lr.dtype == np.float32 and len(lr) == 100


def test_weight_decay_only_on_matrices():
    class P:
        def __init__(self, shape):
            self.shape = shape

    assert decays_weight("visual.proj.weight", P((32, 512)))
    assert decays_weight("visual.backbone.conv.weight", P((32, 3, 3, 3)))
    assert not decays_weight("text.ln_final.gamma", P((64,)))
    assert not decays_weight("visual.proj.bias", P((32,)))
    assert not decays_weight("logit_scale", P(()))


def numpy_adamw(param, grads, lr, wd, beta1=0.9, beta2=0.98, eps=1e-6):
    """torch.optim.AdamW, written out."""
    m = np.zeros_like(param)
    v = np.zeros_like(param)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        param = param - lr * wd * param
        param = param - lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    return param


def test_adamw_matches_torch_formula():
    from mindclip.train.optim import AdamW

    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((3, 4)).astype(np.float32)
    b0 = rng.standard_normal((4,)).astype(np.float32)
    w = ms.Parameter(ms.Tensor(w0), name="w")
    b = ms.Parameter(ms.Tensor(b0), name="b")
    opt = AdamW([w, b], [True, False], weight_decay=0.1)
    grads = [(rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((4,)).astype(np.float32))
             for _ in range(4)]
    for gw, gb in grads:
        opt((ms.Tensor(gw), ms.Tensor(gb)), ms.Tensor(0.01, ms.float32))
    np.testing.assert_allclose(w.asnumpy(), numpy_adamw(w0, [g[0] for g in grads], 0.01, 0.1), atol=1e-6)
    np.testing.assert_allclose(b.asnumpy(), numpy_adamw(b0, [g[1] for g in grads], 0.01, 0.0), atol=1e-6)
