"""Loss functions: tensors in, tensors out (never models). All numerics in fp32."""
from mindclip.losses.contrastive import ClipLoss, GatherFeatures, InstanceLoss, contrastive_logits
from mindclip.losses.mlm import IGNORE_INDEX, mlm_loss, mlm_loss_sums
from mindclip.losses.pyramid import PyramidLoss, pyramid_loss
from mindclip.losses.soft_targets import soft_cross_entropy, smoothed_targets, soft_targets
from mindclip.losses.token_alignment import (text_word_mask, token_alignment_loss, token_alignment_sums,
                                              token_cost)

__all__ = [
    "ClipLoss", "InstanceLoss", "GatherFeatures", "contrastive_logits",
    "soft_targets", "smoothed_targets", "soft_cross_entropy",
    "token_alignment_loss", "token_alignment_sums", "token_cost", "text_word_mask",
    "mlm_loss", "mlm_loss_sums", "IGNORE_INDEX",
    "PyramidLoss", "pyramid_loss",
]
