"""The pieces of a train step (`harness.STEP_PIECES`), each its own graph, built from the objective's
public parts: the towers, `objective.contrastive`, the token-alignment and MLM losses, the step's AdamW.
`torch_pieces` defines the same pieces on the PyTorch reference.
"""
import mindspore as ms
import numpy as np
from mindspore import nn, ops

from mindclip.bench.harness import PROGRESS
from mindclip.losses import mlm_loss_sums, text_word_mask, token_alignment_sums


class WeightedSum(nn.Cell):
    """(net(*inputs) * fixed weights).sum(): a scalar whose gradient reaches every output element."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, *inputs):
        out = self.net(*inputs)
        return (out * ops.sin(ops.arange(out.size, dtype=out.dtype).reshape(out.shape))).sum()


class WeightGrads(nn.Cell):
    """Forward + backward of a scalar Cell: the gradients of `params`."""

    def __init__(self, scalar_net, params):
        super().__init__()
        self.net = scalar_net
        self.params = ms.ParameterTuple(params)
        self.grad = ops.GradOperation(get_by_list=True)

    def construct(self, *inputs):
        return self.grad(self.net, self.params)(*inputs)


class TokenLookup(nn.Cell):
    """The token table alone: ids (B, L) -> rows (B, L, W)."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def construct(self, ids):
        return ops.gather(self.table, ids, 0)


class ContrastiveParts(nn.Cell):
    """The sum of `objective.contrastive` on fixed features (the batch against itself)."""

    def __init__(self, objective):
        super().__init__()
        self.objective = objective

    def construct(self, logit_scale_exp, progress, *features):
        parts = self.objective.contrastive(features, features, logit_scale_exp, progress, 0)
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total


class TokenAlignment(nn.Cell):
    """The summed token-alignment loss (host Hungarian op inside) of fixed image and text tokens."""

    def construct(self, image_tokens, text_tokens, tokens):
        return token_alignment_sums(image_tokens, text_tokens, text_word_mask(tokens))[0]


class MlmBranch(nn.Cell):
    """Image stages as fixed inputs; the masked-text pass, fusion, both heads and their summed losses."""

    def __init__(self, pretrain):
        super().__init__()
        self.pretrain = pretrain

    def construct(self, s1, s2, s3, s4, mlm_tokens, mlm_positions, mlm_labels):
        text_logits, fuse_logits = self.pretrain.mlm_logits((s1, s2, s3, s4), mlm_tokens, mlm_positions)
        return mlm_loss_sums(text_logits, mlm_labels)[0] + mlm_loss_sums(fuse_logits, mlm_labels)[0]


class OptimizerOnly(nn.Cell):
    """One AdamW update from given gradients."""

    def __init__(self, optimizer):
        super().__init__()
        self.optimizer = optimizer

    def construct(self, lr, *grads):
        return self.optimizer(grads, lr)


def available_pieces(objective):
    """The pieces this objective has: the LightCLIP ones only when their loss weight is on."""
    names = ["image_tower", "text_tower", "token_table", "text_no_table", "inst_loss", "optimizer"]
    if getattr(objective, "token_on", False):
        names.append("token_loss")
    if getattr(objective, "mlm_on", False):
        names.append("mlm_branch")
    return names


def tensor(array):
    return ms.Tensor(np.asarray(array, np.float32))


def build_pieces(names, objective, step, images, tokens, mlm_columns, rng):
    """name -> (cell, inputs) for each of `names`; from one batch: `images` (the first view), the caption
    `tokens` and, for LightCLIP, `mlm_columns` (mlm_tokens, mlm_positions, mlm_labels)."""
    clip, table = objective.clip, objective.clip.text.token_embedding
    text_params = clip.text.trainable_params()
    builders = {
        "image_tower": lambda: (WeightGrads(WeightedSum(clip.visual), clip.visual.trainable_params()), [images]),
        "text_tower": lambda: (WeightGrads(WeightedSum(clip.text), text_params), [tokens]),
        "token_table": lambda: (WeightGrads(WeightedSum(TokenLookup(table)), [table]), [tokens]),
        "text_no_table": lambda: (WeightGrads(WeightedSum(clip.text), [p for p in text_params if p is not table]),
                                  [tokens]),
        "inst_loss": lambda: _inst_loss(objective, images.shape[0], rng),
        "token_loss": lambda: _token_loss(objective, images, tokens, rng),
        "mlm_branch": lambda: _mlm_branch(objective, images, mlm_columns),
        "optimizer": lambda: _optimizer(step.optimizer, rng),
    }
    return {name: builders[name]() for name in names}


def _unit_rows(rng, rows, width):
    x = rng.standard_normal((rows, width))
    return tensor(x / np.linalg.norm(x, axis=-1, keepdims=True))


def _inst_loss(objective, batch, rng):
    features = [_unit_rows(rng, batch, objective.clip.embed_dim) for _ in range(objective.feature_count)]
    scale = tensor(np.exp(objective.clip.logit_scale.asnumpy()))
    return ops.GradOperation(get_all=True)(ContrastiveParts(objective)), [scale, tensor(PROGRESS)] + features


def _token_loss(objective, images, tokens, rng):
    grid = objective.clip.visual.forward_stages(images)[3].shape  # (B, C, H, W)
    embed = objective.clip.embed_dim
    image_tokens = tensor(rng.standard_normal((grid[0], grid[2] * grid[3], embed)))
    text_tokens = tensor(rng.standard_normal((tokens.shape[0], tokens.shape[1], embed)))
    return ops.GradOperation(get_all=True)(TokenAlignment()), [image_tokens, text_tokens, tokens]


def _mlm_branch(objective, images, mlm_columns):
    stages = [tensor(s.asnumpy()) for s in objective.clip.visual.forward_stages(images)]
    return WeightGrads(MlmBranch(objective.model), objective.model.trainable_params()), stages + list(mlm_columns)


def _optimizer(optimizer, rng):
    grads = [tensor(rng.standard_normal(p.shape) * 1e-3) for p in optimizer.params]
    return OptimizerOnly(optimizer), [tensor(1e-8)] + grads
