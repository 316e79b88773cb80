"""Symmetric contrastive (InfoNCE) losses over the global batch: CLIP and LightCLIP's L_inst.

Shapes: B local pairs per rank, W ranks, E embedding width. `GatherFeatures` collects the global
batch (open_clip's `gather_features`); `InstanceLoss` builds the logits and the soft targets of
each direction from that direction's own rows and averages the two cross-entropies.

With `local_loss=False` every rank computes the full (W*B, W*B) loss; with `local_loss=True` a rank
computes only its B rows against all W*B columns (positives at column rank*B + i). With
`gather_with_grad=True` the gradient flows through the gather, and a mean gradient reduction over
ranks (`gradients_mean=True`) gives exactly the single-process full-batch gradient in both modes.
With `gather_with_grad=False` (open_clip's default) other ranks' features are constants.
"""
import mindspore as ms
import numpy as np
from mindspore import nn, ops

from mindclip.losses.soft_targets import ALWAYS, soft_cross_entropy, soft_targets
from mindclip.ops.all_gather import AllGatherWithGrad, world_info


class GatherFeatures(nn.Cell):
    """Gather feature tensors (each (B, E_k)) from every rank into (W*B, E_k), in rank order.

    All inputs travel in one collective (concatenated along the feature axis). Identity when the
    world size is 1. With `gather_with_grad=False` only this rank's rows of the result keep their
    gradient (open_clip's behaviour without `gather_with_grad`).
    """

    def __init__(self, gather_with_grad=True, rank=None, world_size=None):
        super().__init__()
        self.rank, self.world_size = world_info(rank, world_size)
        self.gather_with_grad = gather_with_grad
        self.all_gather = AllGatherWithGrad(self.rank, self.world_size)

    def construct(self, *features):
        if self.world_size == 1:
            return features
        widths = [f.shape[-1] for f in features]
        local = ops.concat([f.astype(ms.float32) for f in features], axis=-1)  # (B, sum E_k)
        gathered = self.all_gather(local)  # (W*B, sum E_k)
        if not self.gather_with_grad:
            gathered = self._keep_own_rows(ops.stop_gradient(gathered), local)
        outputs = ()
        start = 0
        for width in widths:
            outputs = outputs + (gathered[:, start:start + width],)
            start = start + width
        return outputs

    def _keep_own_rows(self, gathered, local):
        """Rows of this rank taken from `local` (with gradient), the others from `gathered`."""
        batch = local.shape[0]
        own = np.zeros((self.world_size * batch, 1), dtype=np.bool_)
        own[self.rank * batch:(self.rank + 1) * batch] = True
        own = ops.broadcast_to(ms.Tensor(own), gathered.shape)
        return ops.select(own, ops.tile(local, (self.world_size, 1)), gathered)


def contrastive_logits(image_features, text_features, all_image, all_text, logit_scale_exp,
                       local_loss):
    """(logits_per_image, logits_per_text) in fp32: (B, W*B) each if `local_loss`, else (W*B, W*B)."""
    image_features, text_features = image_features.astype(ms.float32), text_features.astype(ms.float32)
    all_image, all_text = all_image.astype(ms.float32), all_text.astype(ms.float32)
    scale = logit_scale_exp.astype(ms.float32)
    if local_loss:
        logits_per_image = scale * ops.matmul(image_features, all_text.T)  # (B, W*B)
        logits_per_text = scale * ops.matmul(text_features, all_image.T)  # (B, W*B)
        return logits_per_image, logits_per_text
    logits_per_image = scale * ops.matmul(all_image, all_text.T)  # (W*B, W*B)
    return logits_per_image, logits_per_image.T


def symmetric_soft_loss(logits_per_image, logits_per_text, progress, r1, r2, delta, offset):
    """Mean of the image->text and text->image soft cross-entropies.

    Each direction takes its targets from its own rows of logits; `offset` is the column of row 0's
    positive (rank * B for a local loss, else 0).
    """
    image_targets = soft_targets(logits_per_image, progress, r1, r2, delta, offset)
    text_targets = soft_targets(logits_per_text, progress, r1, r2, delta, offset)
    return (soft_cross_entropy(logits_per_image, image_targets)
            + soft_cross_entropy(logits_per_text, text_targets)) / 2


class InstanceLoss(nn.Cell):
    """LightCLIP's L_inst: symmetric InfoNCE with progressively softened targets, global batch.

    construct(image_features (B,E), text_features (B,E), logit_scale_exp (), progress) -> scalar.
    Features are expected L2-normalised; `progress` (float or scalar Tensor) is step / total_steps.

    Args:
        r1, r2, delta: target schedule (see `soft_targets`); r1 = r2 = inf gives plain CLIP.
        local_loss: local rows x global columns instead of the full global matrix.
        gather_with_grad: let the gradient flow through the all-gather.
        rank, world_size: default to the initialised communication world, or (0, 1).
    """

    def __init__(self, r1=0.33, r2=0.66, delta=0.2, local_loss=False, gather_with_grad=True,
                 rank=None, world_size=None):
        super().__init__()
        self.r1, self.r2, self.delta = float(r1), float(r2), float(delta)
        self.local_loss = local_loss
        self.gather = GatherFeatures(gather_with_grad, rank, world_size)
        self.rank = self.gather.rank

    def construct(self, image_features, text_features, logit_scale_exp, progress=0.0):
        all_image, all_text = self.gather(image_features, text_features)  # (W*B, E) each
        logits_per_image, logits_per_text = contrastive_logits(
            image_features, text_features, all_image, all_text, logit_scale_exp, self.local_loss)
        offset = self.rank * image_features.shape[0] if self.local_loss else 0
        return symmetric_soft_loss(logits_per_image, logits_per_text, progress,
                                   self.r1, self.r2, self.delta, offset)


class ClipLoss(InstanceLoss):
    """CLIP's symmetric InfoNCE over the global batch (one-hot targets at every progress)."""

    def __init__(self, local_loss=False, gather_with_grad=True, rank=None, world_size=None):
        super().__init__(r1=ALWAYS, r2=ALWAYS, delta=0.0, local_loss=local_loss,
                         gather_with_grad=gather_with_grad, rank=rank, world_size=world_size)
