"""The one train step: a graph-mode Cell for each forward + backward, driven over the micro-batches
of one optimizer step by `TrainStep`. Built by `mindclip.train.build_train_step` (build.py).

`StepCell`: forward + backward (GradOperation with a sensitivity = loss scale) -> unscale -> reduce
across ranks -> all-finite check -> [accumulate] -> [clip] -> AdamW -> clamp logit_scale -> update the
dynamic loss scale. Each piece is a small function; the cell only composes them.

`TrainStep`: one optimizer step over K micro-batches, in one of three ways:
- K = 1: one `BatchLoss` pass.
- `optim.accumulation: features` (K > 1): exact contrastive accumulation, a `FeaturePass` over every
  micro-batch, then a `SplicedLoss` pass over each one with gradient; the K gradients are summed.
- `optim.accumulation: gradients` (K > 1): K independent `BatchLoss` passes whose gradients are
  averaged (each micro-batch sees only its own negatives: a different objective, kept on request).
An optimizer step updates the weights only when every one of its passes was finite.
"""
import collections
import math

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from mindclip.train.batch_losses import splice_index

LOGIT_SCALE_MAX = math.log(100.0)

_unscale = ops.MultitypeFuncGraph("unscale")
_is_finite = ops.MultitypeFuncGraph("is_finite")
_add_into = ops.MultitypeFuncGraph("add_into")
_scaled = ops.MultitypeFuncGraph("scaled")
_reset = ops.MultitypeFuncGraph("reset")
_square_sum = ops.MultitypeFuncGraph("square_sum")


@_unscale.register("Tensor", "Tensor")
def _unscale_grad(inv_scale, grad):
    return ops.cast(grad, ms.float32) * inv_scale


@_is_finite.register("Tensor")
def _grad_is_finite(grad):
    return ops.isfinite(grad).all()


@_add_into.register("Tensor", "Tensor")
def _accumulate(accum, grad):
    return ops.assign_add(accum, grad)


@_scaled.register("Tensor", "Tensor")
def _times(factor, accum):
    return accum * factor


@_reset.register("Tensor")
def _zero(accum):
    return ops.assign(accum, ops.zeros_like(accum))


@_square_sum.register("Tensor")
def _sum_of_squares(grad):
    return (grad * grad).sum()


def clip_by_global_norm(hyper_map, grads, max_norm):
    """Scale `grads` by min(1, max_norm / (global L2 norm + 1e-6)) (torch's clip_grad_norm_), shapes kept:
    `ops.clip_by_global_norm` returns a () gradient as (1,), which AdamW's kernel refuses."""
    norm = ops.sqrt(ops.stack(hyper_map(_square_sum, grads)).sum())
    return hyper_map(ops.partial(_scaled, ops.minimum(max_norm / (norm + 1e-6), 1.0)), grads)


class StepCell(nn.Cell):
    """`construct(lr, do_update, *inputs) -> (loss, parts, finite, loss_scale)`.

    loss_cell: Cell `(*inputs) -> (loss scalar, parts (P,))`; only `loss` is differentiated.
    optimizer: `AdamW` over the trainable weights.
    loss_scale: "dynamic" | "none" | a fixed number (as text or float).
    grad_reducer: `nn.DistributedGradReducer` for data parallel, None on one process.
    accumulate: None (update on every call), "mean" or "sum": add each call's gradients into buffers
        and update with their mean or sum when `do_update`; the update happens only when every call
        since the last one was finite (`finite` then says so), and the buffers start again from zero.
    A call whose gradients (or loss) are not finite on any rank changes no weight.
    """

    def __init__(self, loss_cell, optimizer, logit_scale, loss_scale="none", init_loss_scale=65536.0,
                 grad_reducer=None, clip_grad_norm=0.0, accumulate=None, accumulation_steps=1,
                 scale_window=1000):
        super().__init__(auto_prefix=False)
        self.loss_cell = loss_cell
        self.optimizer = optimizer
        self.weights = optimizer.params
        self.logit_scale = logit_scale
        self.grad = ops.GradOperation(get_by_list=True, sens_param=True)
        self.hyper_map = ops.HyperMap()
        self.grad_reducer = grad_reducer if grad_reducer is not None else ops.identity
        self.clip_grad_norm = float(clip_grad_norm)
        self.accumulate = accumulate is not None
        if self.accumulate:
            self.accum_grads = self.weights.clone(prefix="accum", init="zeros")
            self.accum_finite = ms.Parameter(ms.Tensor(True), name="accum_finite", requires_grad=False)
            self.accum_factor = ms.Tensor(1.0 / accumulation_steps if accumulate == "mean" else 1.0, ms.float32)
        self.dynamic_scale = loss_scale == "dynamic"
        value = init_loss_scale if self.dynamic_scale else (1.0 if loss_scale == "none" else float(loss_scale))
        self.loss_scale = ms.Parameter(ms.Tensor(value, ms.float32), name="loss_scale", requires_grad=False)
        if self.dynamic_scale:
            self.scale_updater = nn.DynamicLossScaleUpdateCell(value, scale_factor=2, scale_window=scale_window)

    def construct(self, lr, do_update, *inputs):
        loss, parts = self.loss_cell(*inputs)  # scalar, (P,)
        scale = self.loss_scale * 1.0  # the value this call uses (the Parameter is updated below)
        sens = (ops.cast(scale, loss.dtype), ops.zeros_like(parts))
        grads = self.grad(self.loss_cell, self.weights)(*inputs, sens)
        grads = self.hyper_map(ops.partial(_unscale, 1.0 / scale), grads)
        grads = self.grad_reducer(grads)  # over ranks; a non-finite value spreads to every rank
        finite = ops.logical_and(ops.stack(self.hyper_map(_is_finite, grads)).all(), ops.isfinite(loss))
        if self.dynamic_scale:
            finite = ops.logical_not(self.scale_updater(self.loss_scale, ops.logical_not(finite)))
        if self.accumulate:
            finite = self._accumulate(grads, finite, lr, do_update)
        elif finite:
            loss = ops.depend(loss, self._update(grads, lr))
        return loss, parts, finite, scale

    def _accumulate(self, grads, finite, lr, do_update):
        """Add `grads` into the buffers; on `do_update`, update if all calls were finite, then reset."""
        added = self.hyper_map(_add_into, self.accum_grads, grads)
        all_finite = ops.depend(ops.logical_and(self.accum_finite, finite), added)
        all_finite = ops.depend(all_finite, ops.assign(self.accum_finite, all_finite))
        if do_update:
            if all_finite:
                grads = self.hyper_map(ops.partial(_scaled, self.accum_factor), self.accum_grads)
                all_finite = ops.depend(all_finite, self._update(grads, lr))
            all_finite = ops.depend(all_finite, self.hyper_map(_reset, self.accum_grads))
            all_finite = ops.depend(all_finite, ops.assign(self.accum_finite, ops.ones_like(self.accum_finite)))
            return all_finite
        return finite

    def _update(self, grads, lr):
        if self.clip_grad_norm > 0:
            grads = clip_by_global_norm(self.hyper_map, grads, self.clip_grad_norm)
        lr = ops.depend(lr, self.optimizer(grads, lr))
        clamped = ops.clamp(self.logit_scale, 0.0, LOGIT_SCALE_MAX)
        return ops.depend(lr, ops.assign(self.logit_scale, clamped))


StepResult = collections.namedtuple("StepResult", "loss parts finite loss_scale")
StepResult.__doc__ = """One optimizer step: loss (float, sum(weights * parts)), parts (P,) float64 over
the whole batch, finite (bool: the weights were updated), loss_scale (float, the last pass's)."""


class TrainStep:
    """`step(lr, progress, micro_batches) -> StepResult`: one optimizer step.

    micro_batches: a list of K batches (tuples of Tensors in the method's column order), K =
    `accumulation_steps`; every micro-batch has the same batch size. `lr` and `progress` are floats
    (or scalar Tensors). Built by `build_train_step`; `cell` is the graph, `optimizer` and
    `loss_scale` are what a checkpoint holds.
    """

    def __init__(self, cell, objective, accumulation_steps=1, feature_pass=None, rank=0, world_size=1):
        self.cell = cell
        self.objective = objective
        self.optimizer = cell.optimizer
        self.loss_scale = cell.loss_scale
        self.accumulation_steps = accumulation_steps
        self.feature_pass = feature_pass
        self.rank, self.world_size = rank, world_size
        self.part_weights = np.array(objective.part_weights, np.float64)

    def __call__(self, lr, progress, micro_batches):
        if len(micro_batches) != self.accumulation_steps:
            raise ValueError(f"TrainStep: got {len(micro_batches)} micro-batches, the step takes "
                             f"{self.accumulation_steps} (optim.accumulation_steps)")
        lr, progress = ms.Tensor(lr, ms.float32), ms.Tensor(progress, ms.float32)
        if self.feature_pass is not None:
            outputs = self._features_step(lr, progress, micro_batches)
            parts = np.sum([out[1].asnumpy() for out in outputs], axis=0, dtype=np.float64)
        else:
            outputs = [self.cell(lr, ms.Tensor(k == len(micro_batches) - 1), progress, *batch)
                       for k, batch in enumerate(micro_batches)]
            parts = np.mean([out[1].asnumpy() for out in outputs], axis=0, dtype=np.float64)
        finite = bool(outputs[-1][2].asnumpy())
        return StepResult(float(self.part_weights @ parts), parts, finite, float(outputs[-1][3].asnumpy()))

    def _features_step(self, lr, progress, micro_batches):
        """First pass: every micro-batch's features; second pass: each one again, with gradient."""
        cached = [self.feature_pass(*batch) for batch in micro_batches]
        cache = tuple(ms.Tensor(np.concatenate([c[0][i].asnumpy() for c in cached]))
                      for i in range(len(cached[0][0])))  # (N, E_i), N = K*W*B, micro-batch-major
        totals = np.maximum(np.sum([c[1].asnumpy() for c in cached], axis=0), 1.0)
        totals = tuple(ms.Tensor(t, ms.float32) for t in totals[:self.objective.local_part_count])
        rows, batch = cache[0].shape[0], micro_batches[0][0].shape[0]
        scale_share = ms.Tensor(1.0 / (len(micro_batches) * self.world_size), ms.float32)
        outputs = []
        for k, micro in enumerate(micro_batches):
            index = ms.Tensor(splice_index(rows, (k * self.world_size + self.rank) * batch, batch))
            report = ms.Tensor(1.0 if k == 0 else 0.0, ms.float32)
            do_update = ms.Tensor(k == len(micro_batches) - 1)
            outputs.append(self.cell(lr, do_update, progress, index, scale_share, report, *cache, *totals,
                                     *micro))
        return outputs
