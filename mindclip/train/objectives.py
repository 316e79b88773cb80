"""Objectives: a model plus its losses, `(progress, *batch) -> (total loss, parts (P,))`.

The train step differentiates an objective; every method (CLIP, LightCLIP, PyramidCLIP) is one
objective over the same step. `part_names` label the entries of `parts` in logs.
"""
import mindspore as ms
from mindspore import nn, ops

from mindclip.losses import InstanceLoss, PyramidLoss, mlm_loss, text_word_mask, token_alignment_loss


def instance_loss_from(loss_cfg):
    """The global-batch contrastive loss with the schedule of soft targets from the config."""
    return InstanceLoss(r1=loss_cfg.r1, r2=loss_cfg.r2, delta=loss_cfg.delta,
                        local_loss=loss_cfg.local_loss, gather_with_grad=loss_cfg.gather_with_grad)


class ClipObjective(nn.Cell):
    """CLIP: symmetric InfoNCE over the global batch. Batch: (images, tokens)."""

    part_names = ("inst",)

    def __init__(self, model, loss_cfg):
        super().__init__()
        self.model = model
        self.instance_loss = instance_loss_from(loss_cfg)
        self.inst_weight = loss_cfg.inst_weight

    def construct(self, progress, images, tokens):
        image_features, text_features, logit_scale_exp = self.model(images, tokens)  # (B,E), (B,E), ()
        inst = self.instance_loss(image_features, text_features, logit_scale_exp, progress)
        return self.inst_weight * inst, ops.stack([inst])


class LightClipObjective(nn.Cell):
    """LightCLIP: a*L_inst + b*L_token + c*L_mlm (DESIGN.md).

    Batch: (images, tokens, mlm_tokens, mlm_positions, mlm_labels). `model` is a
    `LightCLIPPretrain`; parts whose weight is 0 are not computed (reported as 0).
    """

    part_names = ("inst", "token", "mlm_text", "mlm_fuse")

    def __init__(self, model, loss_cfg):
        super().__init__()
        self.model = model
        self.instance_loss = instance_loss_from(loss_cfg)
        self.inst_weight = loss_cfg.inst_weight
        self.token_weight = loss_cfg.token_weight
        self.mlm_weight = loss_cfg.mlm_weight

    def construct(self, progress, images, tokens, mlm_tokens, mlm_positions, mlm_labels):
        (image_features, text_features, logit_scale_exp, image_tokens, text_tokens,
         mlm_text_logits, mlm_fuse_logits) = self.model(images, tokens, mlm_tokens, mlm_positions)
        inst = self.instance_loss(image_features, text_features, logit_scale_exp, progress)
        zero = ops.zeros_like(inst)
        token = zero
        mlm_text = zero
        mlm_fuse = zero
        if self.token_weight > 0:
            # (B, H*W, E) image tokens vs (B, L, E) text tokens, words only
            token = token_alignment_loss(image_tokens, text_tokens, text_word_mask(tokens))
        if self.mlm_weight > 0:
            mlm_text = mlm_loss(mlm_text_logits, mlm_labels)  # (B, K, V) at the chosen positions
            mlm_fuse = mlm_loss(mlm_fuse_logits, mlm_labels)
        total = (self.inst_weight * inst + self.token_weight * token
                 + self.mlm_weight * (mlm_text + mlm_fuse) / 2)
        return total, ops.stack([inst, token, mlm_text, mlm_fuse])


class PyramidClipObjective(nn.Cell):
    """PyramidCLIP: w_GS*L_GS + w_LT*L_LT + w_RS*L_RS + w_RT*L_RT, label-smoothed (DESIGN.md).

    The weights are `loss.pyramid_weights` (0.25 each in the paper); every part is computed and
    logged whatever its weight (a 0 weight is an ablation of Table 6).

    Batch: (image_global, image_local, tokens, summary_tokens, roi, roi_count). `model` is a
    `PyramidCLIPPretrain` returning (v_global, v_local, v_roi, t_text, t_summary, logit_scale_exp).
    """

    part_names = ("global_summary", "local_text", "roi_summary", "roi_text")

    def __init__(self, model, loss_cfg):
        super().__init__()
        self.model = model
        self.pyramid_loss = PyramidLoss(alpha=loss_cfg.pyramid_alpha, local_loss=loss_cfg.local_loss,
                                        gather_with_grad=loss_cfg.gather_with_grad)
        self.part_weights = ms.Tensor(loss_cfg.pyramid_weights, ms.float32)  # (4,)

    def construct(self, progress, image_global, image_local, tokens, summary_tokens, roi, roi_count):
        v_global, v_local, v_roi, t_text, t_summary, logit_scale_exp = self.model(
            image_global, image_local, tokens, summary_tokens, roi, roi_count)
        _, parts = self.pyramid_loss(v_global, v_local, v_roi, t_text, t_summary, logit_scale_exp)
        parts = ops.stack(parts)  # (4,)
        return (self.part_weights * parts).sum(), parts
