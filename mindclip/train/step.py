"""The one train step: a Cell compiled once in graph mode.

forward + backward (GradOperation with a sensitivity = loss scale) -> unscale -> reduce across
ranks -> all-finite check -> [accumulate] -> [clip] -> AdamW -> clamp logit_scale -> update the
dynamic loss scale. Each piece is a small function; the step only composes them.
"""
import math

import mindspore as ms
from mindspore import nn, ops

LOGIT_SCALE_MAX = math.log(100.0)

_unscale = ops.MultitypeFuncGraph("unscale")
_is_finite = ops.MultitypeFuncGraph("is_finite")
_add_into = ops.MultitypeFuncGraph("add_into")
_take_mean = ops.MultitypeFuncGraph("take_mean")


@_unscale.register("Tensor", "Tensor")
def _unscale_grad(inv_scale, grad):
    return ops.cast(grad, ms.float32) * inv_scale


@_is_finite.register("Tensor")
def _grad_is_finite(grad):
    return ops.isfinite(grad).all()


@_add_into.register("Tensor", "Tensor")
def _accumulate(accum, grad):
    return ops.assign_add(accum, grad)


@_take_mean.register("Tensor", "Tensor")
def _mean_and_reset(inv_count, accum):
    mean = accum * inv_count
    return ops.depend(mean, ops.assign(accum, ops.zeros_like(accum)))


class TrainStep(nn.Cell):
    """`construct(lr, progress, do_update, *batch) -> (loss, parts, finite, loss_scale)`.

    objective: Cell `(progress, *batch) -> (loss scalar, parts (P,))`.
    optimizer: `AdamW` over the trainable weights.
    loss_scale: "dynamic" | "none" | a fixed number (as text or float).
    grad_reducer: `nn.DistributedGradReducer` for data parallel, None on one process.
    accumulation_steps > 1 adds gradients into buffers; the update happens when `do_update`.
    A step whose gradients (or loss) are not finite on any rank changes no weight.
    """

    def __init__(self, objective, optimizer, logit_scale, loss_scale="none", init_loss_scale=65536.0,
                 grad_reducer=None, clip_grad_norm=0.0, accumulation_steps=1, scale_window=1000):
        super().__init__(auto_prefix=False)
        self.objective = objective
        self.optimizer = optimizer
        self.weights = optimizer.params
        self.logit_scale = logit_scale
        self.grad = ops.GradOperation(get_by_list=True, sens_param=True)
        self.hyper_map = ops.HyperMap()
        self.grad_reducer = grad_reducer if grad_reducer is not None else ops.identity
        self.clip_grad_norm = float(clip_grad_norm)
        self.accumulate = accumulation_steps > 1
        if self.accumulate:
            self.accum_grads = self.weights.clone(prefix="accum", init="zeros")
            self.inv_accum = ms.Tensor(1.0 / accumulation_steps, ms.float32)
        self.dynamic_scale = loss_scale == "dynamic"
        value = init_loss_scale if self.dynamic_scale else (1.0 if loss_scale == "none" else float(loss_scale))
        self.loss_scale = ms.Parameter(ms.Tensor(value, ms.float32), name="loss_scale", requires_grad=False)
        if self.dynamic_scale:
            self.scale_updater = nn.DynamicLossScaleUpdateCell(value, scale_factor=2, scale_window=scale_window)

    def construct(self, lr, progress, do_update, *batch):
        loss, parts = self.objective(progress, *batch)  # scalar, (P,)
        scale = self.loss_scale * 1.0  # the value this step uses (the Parameter is updated below)
        sens = (ops.cast(scale, loss.dtype), ops.zeros_like(parts))
        grads = self.grad(self.objective, self.weights)(progress, *batch, sens)
        grads = self.hyper_map(ops.partial(_unscale, 1.0 / scale), grads)
        grads = self.grad_reducer(grads)  # mean over ranks; a non-finite value spreads to every rank
        finite = ops.logical_and(ops.stack(self.hyper_map(_is_finite, grads)).all(), ops.isfinite(loss))
        if self.dynamic_scale:
            finite = ops.logical_not(self.scale_updater(self.loss_scale, ops.logical_not(finite)))
        if finite:
            loss = ops.depend(loss, self._apply(grads, lr, do_update))
        return loss, parts, finite, scale

    def _apply(self, grads, lr, do_update):
        if self.accumulate:
            grads = ops.depend(grads, self.hyper_map(_add_into, self.accum_grads, grads))
            if do_update:
                return self._update(self.hyper_map(ops.partial(_take_mean, self.inv_accum), self.accum_grads), lr)
            return lr
        return self._update(grads, lr)

    def _update(self, grads, lr):
        if self.clip_grad_norm > 0:
            grads = ops.clip_by_global_norm(grads, self.clip_grad_norm)
        lr = ops.depend(lr, self.optimizer(grads, lr))
        clamped = ops.clamp(self.logit_scale, 0.0, LOGIT_SCALE_MAX)
        return ops.depend(lr, ops.assign(self.logit_scale, clamped))  # both branches return lr
