"""PyramidCLIP's objective: four label-smoothed symmetric InfoNCE losses over the global batch.

L = 0.25 * (L_GS + L_LT + L_RS + L_RT) over the pairs (global view, summary), (local view, text),
(ROI, summary), (ROI, text); every loss uses constant label smoothing alpha (DESIGN.md).
"""
from mindspore import nn

from mindclip.losses.contrastive import GatherFeatures, contrastive_logits, symmetric_soft_loss
from mindclip.losses.soft_targets import ALWAYS


def smoothed_pair_loss(image_features, text_features, all_image, all_text, logit_scale_exp,
                       alpha, local_loss=False, offset=0):
    """Symmetric InfoNCE with label smoothing alpha for one (image, text) feature pair."""
    logits_per_image, logits_per_text = contrastive_logits(
        image_features, text_features, all_image, all_text, logit_scale_exp, local_loss)
    return symmetric_soft_loss(logits_per_image, logits_per_text, 0.0, 0.0, ALWAYS, alpha, offset)


def pyramid_loss(v_global, v_local, v_roi, t_text, t_summary, logit_scale_exp, alpha=0.2):
    """PyramidCLIP loss on features that already hold the whole batch (single process).

    Args:
        v_global, v_local, v_roi: (N, E) normalised image features of the global view, the local
            view and the ROI path; t_text, t_summary: (N, E) normalised text / summary features.
        logit_scale_exp: scalar Tensor, exp(logit_scale).
        alpha: label smoothing.

    Returns:
        (total, (l_gs, l_lt, l_rs, l_rt)), scalar fp32 Tensors.
    """
    l_gs = smoothed_pair_loss(v_global, t_summary, v_global, t_summary, logit_scale_exp, alpha)
    l_lt = smoothed_pair_loss(v_local, t_text, v_local, t_text, logit_scale_exp, alpha)
    l_rs = smoothed_pair_loss(v_roi, t_summary, v_roi, t_summary, logit_scale_exp, alpha)
    l_rt = smoothed_pair_loss(v_roi, t_text, v_roi, t_text, logit_scale_exp, alpha)
    return 0.25 * (l_gs + l_lt + l_rs + l_rt), (l_gs, l_lt, l_rs, l_rt)


class PyramidLoss(nn.Cell):
    """`pyramid_loss` over the global batch: the five feature sets are gathered in one collective.

    construct(v_global, v_local, v_roi, t_text, t_summary, logit_scale_exp)
        -> (total, (l_gs, l_lt, l_rs, l_rt)); local features are (B, E).
    Args: alpha, and local_loss / gather_with_grad / rank / world_size as in `InstanceLoss`.
    """

    def __init__(self, alpha=0.2, local_loss=False, gather_with_grad=True, rank=None,
                 world_size=None):
        super().__init__()
        self.alpha = float(alpha)
        self.local_loss = local_loss
        self.gather = GatherFeatures(gather_with_grad, rank, world_size)
        self.rank = self.gather.rank

    def construct(self, v_global, v_local, v_roi, t_text, t_summary, logit_scale_exp):
        all_g, all_l, all_r, all_t, all_s = self.gather(v_global, v_local, v_roi, t_text, t_summary)
        offset = self.rank * v_global.shape[0] if self.local_loss else 0
        l_gs = self._pair(v_global, t_summary, all_g, all_s, logit_scale_exp, offset)
        l_lt = self._pair(v_local, t_text, all_l, all_t, logit_scale_exp, offset)
        l_rs = self._pair(v_roi, t_summary, all_r, all_s, logit_scale_exp, offset)
        l_rt = self._pair(v_roi, t_text, all_r, all_t, logit_scale_exp, offset)
        return 0.25 * (l_gs + l_lt + l_rs + l_rt), (l_gs, l_lt, l_rs, l_rt)

    def _pair(self, image_features, text_features, all_image, all_text, logit_scale_exp, offset):
        return smoothed_pair_loss(image_features, text_features, all_image, all_text,
                                  logit_scale_exp, self.alpha, self.local_loss, offset)
