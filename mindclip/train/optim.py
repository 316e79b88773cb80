"""AdamW (decoupled weight decay, bias-corrected, as torch.optim.AdamW) with a per-step lr input.

The learning rate is an input tensor rather than a schedule inside the optimizer, so resuming,
skipping an overflowing step and gradient accumulation never desynchronise it.
"""
import mindspore as ms
from mindspore import nn, ops

_adamw = ops.MultitypeFuncGraph("adamw")
_fused_adam_weight_decay = ops.AdamWeightDecay()


@_adamw.register("Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor",
                 "Tensor", "Tensor", "Tensor", "Tensor")
def _adamw_update(lr, beta1, beta2, eps, bias1, bias2, weight_decay, param, m, v, grad):
    """torch.optim.AdamW's update of one parameter.

    fp32 parameters use MindSpore's fused AdamWeightDecay kernel (one pass instead of about a
    dozen elementwise ops: 0.9 s -> see docs/performance.md for a 50 M-parameter CLIP on CPU). It
    has no bias correction, so the correction is folded into its inputs, exactly in real numbers:
    lr * (m/b1) / (sqrt(v/b2) + eps) = lr' * m / (sqrt(v) + eps') with lr' = lr * sqrt(b2) / b1 and
    eps' = eps * sqrt(b2); then the decay term lr * wd * p needs wd' = wd * b1 / sqrt(b2).
    """
    grad = ops.cast(grad, ms.float32)
    if param.dtype == ms.float32:
        root2 = ops.sqrt(bias2)
        _fused_adam_weight_decay(param, m, v, lr * root2 / bias1, beta1, beta2, eps * root2,
                                 weight_decay * bias1 / root2, grad)
        return True
    m_new = beta1 * m + (1.0 - beta1) * grad
    v_new = beta2 * v + (1.0 - beta2) * grad * grad
    update = (m_new / bias1) / (ops.sqrt(v_new / bias2) + eps)
    p32 = ops.cast(param, ms.float32)
    p_new = p32 - lr * (update + weight_decay * p32)
    ops.assign(m, m_new)
    ops.assign(v, v_new)
    ops.assign(param, ops.cast(p_new, param.dtype))
    return True


def decays_weight(name, param):
    """Weight decay only on matrices and conv kernels: not biases, norms, embeddings-like 1-D
    tensors or `logit_scale` (one rule, by tensor rank, as nanoGPT)."""
    return len(param.shape) >= 2 and "logit_scale" not in name


class AdamW(nn.Cell):
    """AdamW over `params` (a list of Parameters); `decay_mask[i]` says whether param i decays."""

    def __init__(self, params, decay_mask, weight_decay=0.1, beta1=0.9, beta2=0.98, eps=1e-6):
        super().__init__()
        self.params = ms.ParameterTuple(params)
        self.moments1 = self.params.clone(prefix="adam_m", init="zeros")
        self.moments2 = self.params.clone(prefix="adam_v", init="zeros")
        self.weight_decays = tuple(ms.Tensor(weight_decay if d else 0.0, ms.float32) for d in decay_mask)
        self.beta1 = ms.Tensor(beta1, ms.float32)
        self.beta2 = ms.Tensor(beta2, ms.float32)
        self.eps = ms.Tensor(eps, ms.float32)
        self.step = ms.Parameter(ms.Tensor(0, ms.int32), name="adam_step", requires_grad=False)
        self.hyper_map = ops.HyperMap()

    def construct(self, grads, lr):
        step = self.step + 1
        ops.assign(self.step, step)
        t = ops.cast(step, ms.float32)
        bias1 = 1.0 - ops.pow(self.beta1, t)
        bias2 = 1.0 - ops.pow(self.beta2, t)
        return self.hyper_map(ops.partial(_adamw, lr, self.beta1, self.beta2, self.eps, bias1, bias2),
                              self.weight_decays, self.params, self.moments1, self.moments2, grads)
