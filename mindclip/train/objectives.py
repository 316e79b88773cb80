"""Objectives: a model plus its losses, split so that one train step can run them over any batch split.

Every method (CLIP, LightCLIP, PyramidCLIP) is one objective with the same four pieces:

- `features(*batch) -> (features, logit_scale_exp, counts)`: the (B, E) features that the
  contrastive losses compare across the whole (global) batch, and the counts that normalise the
  per-sample parts. The cheapest forward that gives them (the first pass of feature accumulation).
- `forward(*batch) -> (features, logit_scale_exp, sums, counts)`: the full forward; `sums` are the
  per-sample parts summed over the batch (token alignment, MLM), `counts` what each is averaged over.
- `contrastive(features, all_features, logit_scale_exp, progress, offset) -> parts`: the contrastive
  parts from this batch's rows and the global batch's features (`offset` = column of row 0's positive
  under `loss.local_loss`).
- `part_names` / `part_weights`: parts in order (contrastive first, then the `local_part_count`
  per-sample ones); the total loss is sum(weights * parts). `feature_count`: how many features
  `features` returns; `clip`: the CLIP being trained. The base class `Objective` holds what all three
  set once (model, `local_loss`, schedule, weights) and CLIP's and LightCLIP's `contrastive`.

`mindclip/train/batch_losses.py` composes these into the losses the step differentiates. Keeping sums
and counts apart is what makes a batch split over ranks or micro-batches average exactly like the
whole batch.
"""
import mindspore as ms
from mindspore import nn, ops

from mindclip.losses import mlm_loss_sums, text_word_mask, token_alignment_sums
from mindclip.losses.contrastive import contrastive_logits, symmetric_soft_loss
from mindclip.losses.mlm import IGNORE_INDEX
from mindclip.losses.soft_targets import ALWAYS


def instance_parts(features, all_features, logit_scale_exp, progress, offset, local_loss, schedule):
    """L_inst with the soft-target schedule (r1, r2, delta) from (image, text) features."""
    (image, text), (all_image, all_text) = features, all_features
    logits_per_image, logits_per_text = contrastive_logits(image, text, all_image, all_text, logit_scale_exp,
                                                           local_loss)
    r1, r2, delta = schedule
    return symmetric_soft_loss(logits_per_image, logits_per_text, progress, r1, r2, delta, offset)


class Objective(nn.Cell):
    """What every objective holds: `model`, `local_loss`, the soft-target `schedule` (r1, r2, delta) and
    `part_weights`, set once; `clip` and the default `contrastive` (L_inst of (image, text) features)."""

    def __init__(self, model, loss_cfg, part_weights, schedule=None):
        super().__init__()
        self.model = model
        self.local_loss = loss_cfg.local_loss
        self.schedule = (loss_cfg.r1, loss_cfg.r2, loss_cfg.delta) if schedule is None else schedule
        self.part_weights = tuple(part_weights)

    @property
    def clip(self):
        """The CLIP being trained: the model's `clip` (a pre-training wrapper's), else the model itself."""
        return getattr(self.model, "clip", self.model)

    def contrastive(self, features, all_features, logit_scale_exp, progress, offset):
        return (instance_parts(features, all_features, logit_scale_exp, progress, offset, self.local_loss,
                               self.schedule),)


class ClipObjective(Objective):
    """CLIP: symmetric InfoNCE over the global batch. Batch: (images, tokens)."""

    part_names = ("inst",)
    local_part_count = 0
    feature_count = 2

    def __init__(self, model, loss_cfg):
        super().__init__(model, loss_cfg, (loss_cfg.inst_weight,))

    def features(self, images, tokens):
        image_features, text_features, logit_scale_exp = self.model(images, tokens)  # (B,E), (B,E), ()
        return (image_features, text_features), logit_scale_exp, ()

    def forward(self, images, tokens):
        features, logit_scale_exp, counts = self.features(images, tokens)
        return features, logit_scale_exp, (), counts


class LightClipObjective(Objective):
    """LightCLIP: a*L_inst + b*L_token + c*(L_mlm_text + L_mlm_fuse)/2 (DESIGN.md).

    Batch: (images, tokens, mlm_tokens, mlm_positions, mlm_labels). `model` is a `LightCLIPPretrain`;
    parts whose weight is 0 are not computed (reported as 0).
    """

    part_names = ("inst", "token", "mlm_text", "mlm_fuse")
    local_part_count = 3
    feature_count = 2

    def __init__(self, model, loss_cfg):
        half_mlm = loss_cfg.mlm_weight / 2
        super().__init__(model, loss_cfg, (loss_cfg.inst_weight, loss_cfg.token_weight, half_mlm, half_mlm))
        self.token_on = loss_cfg.token_weight > 0
        self.mlm_on = loss_cfg.mlm_weight > 0

    def _counts(self, tokens, mlm_labels):
        """Samples with at least one word (token part); chosen MLM positions (both MLM parts)."""
        with_word = text_word_mask(tokens).any(axis=1).astype(ms.float32).sum()
        chosen = (mlm_labels != IGNORE_INDEX).astype(ms.float32).sum()
        return with_word, chosen, chosen

    def features(self, images, tokens, mlm_tokens, mlm_positions, mlm_labels):
        image_features, text_features, logit_scale_exp = self.model.clip(images, tokens)  # towers only
        return (image_features, text_features), logit_scale_exp, self._counts(tokens, mlm_labels)

    def forward(self, images, tokens, mlm_tokens, mlm_positions, mlm_labels):
        (image_features, text_features, logit_scale_exp, image_tokens, text_tokens,
         mlm_text_logits, mlm_fuse_logits) = self.model(images, tokens, mlm_tokens, mlm_positions)
        zero = ops.zeros((), ms.float32)
        token_sum, mlm_text_sum, mlm_fuse_sum = zero, zero, zero
        if self.token_on:
            # (B, H*W, E) image tokens vs (B, L, E) text tokens, words only
            token_sum, _ = token_alignment_sums(image_tokens, text_tokens, text_word_mask(tokens))
        if self.mlm_on:
            mlm_text_sum, _ = mlm_loss_sums(mlm_text_logits, mlm_labels)  # (B, K, V) at the chosen positions
            mlm_fuse_sum, _ = mlm_loss_sums(mlm_fuse_logits, mlm_labels)
        return ((image_features, text_features), logit_scale_exp, (token_sum, mlm_text_sum, mlm_fuse_sum),
                self._counts(tokens, mlm_labels))


class PyramidClipObjective(Objective):
    """PyramidCLIP: w_GS*L_GS + w_LT*L_LT + w_RS*L_RS + w_RT*L_RT, label-smoothed (DESIGN.md).

    The weights are `loss.pyramid_weights` (0.25 each in the paper); every part is computed and
    logged whatever its weight (a 0 weight is an ablation of Table 6).

    Batch: (image_global, image_local, tokens, summary_tokens, roi, roi_count). `model` is a
    `PyramidCLIPPretrain` returning (v_global, v_local, v_roi, t_text, t_summary, logit_scale_exp).
    """

    part_names = ("global_summary", "local_text", "roi_summary", "roi_text")
    local_part_count = 0
    feature_count = 5

    def __init__(self, model, loss_cfg):
        super().__init__(model, loss_cfg, loss_cfg.pyramid_weights,
                         schedule=(0.0, ALWAYS, loss_cfg.pyramid_alpha))  # constant label smoothing

    def features(self, image_global, image_local, tokens, summary_tokens, roi, roi_count):
        outputs = self.model(image_global, image_local, tokens, summary_tokens, roi, roi_count)
        return outputs[:5], outputs[5], ()  # (v_global, v_local, v_roi, t_text, t_summary), ()

    def forward(self, image_global, image_local, tokens, summary_tokens, roi, roi_count):
        features, logit_scale_exp, counts = self.features(image_global, image_local, tokens, summary_tokens,
                                                          roi, roi_count)
        return features, logit_scale_exp, (), counts

    def contrastive(self, features, all_features, logit_scale_exp, progress, offset):
        v_global, v_local, v_roi, t_text, t_summary = features
        all_g, all_l, all_r, all_t, all_s = all_features
        return (self._pair(v_global, t_summary, all_g, all_s, logit_scale_exp, offset),
                self._pair(v_local, t_text, all_l, all_t, logit_scale_exp, offset),
                self._pair(v_roi, t_summary, all_r, all_s, logit_scale_exp, offset),
                self._pair(v_roi, t_text, all_r, all_t, logit_scale_exp, offset))

    def _pair(self, image, text, all_image, all_text, logit_scale_exp, offset):
        return instance_parts((image, text), (all_image, all_text), logit_scale_exp, 0.0, offset, self.local_loss,
                              self.schedule)
