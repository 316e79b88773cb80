"""PyramidCLIP pre-training network: a CLIP plus the ROI path, giving the five feature sets of the loss.

Per pair it encodes the global view G and the local view L with the image tower, the caption T and
its summary T_S with the text tower, and the detected objects with `RoiEncoder` (the tower's f2).
Used only while pre-training; inference and export use the CLIP alone.

How the two views go through the image tower (one decision, made per tower at construction):

- A tower without BatchNorm (the ViT; also the text tower, LayerNorm only) treats every sample on
  its own, so G and L run as one concatenated batch of 2B images: exact, and one pass instead of two.
- A tower with BatchNorm (ModifiedResNet) normalises a training batch with that batch's statistics.
  Concatenating would normalise each view with statistics pooled over both views, so a view's
  features would depend on the other view. The views therefore run as two separate passes: each
  is normalised exactly as `clip.encode_image(view)` would normalise it on its own. The running
  statistics are then updated twice per step (global, then local view; the local crops slightly
  shift them). Same FLOPs as one concatenated pass; only the batch per kernel launch is smaller.
"""
from mindspore import nn, ops

from mindclip.models.roi import ROI_DIM, RoiEncoder

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def has_batch_norm(cell):
    """True when any sub-cell of `cell` is a BatchNorm (its training output depends on the batch)."""
    return any(isinstance(sub, _BATCH_NORMS) for _, sub in cell.cells_and_names())


class PyramidCLIPPretrain(nn.Cell):
    """A CLIP plus PyramidCLIP's ROI path (`self.roi`, a `RoiEncoder` over the CLIP's own f2).

    Args:
        clip: the CLIP being trained, with a CLIP tower (`image.backbone: modified_resnet | vit`,
            which have the f1 / f2 split). Held as `self.clip`; its weights are the model checkpoint.
        roi_dim: size of one ROI vector (2048-d feature + 4-d box).
        concat_views: run both views as one batch; None (the default) = only when the image tower
            has no BatchNorm (see the module docstring).

    construct(image_global (B,3,H,W) f32, image_local (B,3,H,W) f32, tokens (B,L) i32,
              summary_tokens (B,L) i32, roi (B,M,roi_dim) f32, roi_count (B,) i32) ->
        v_global (B, E), v_local (B, E), v_roi (B, E), t_text (B, E), t_summary (B, E)   all L2-normalised
        logit_scale_exp ()                                                                exp(clip.logit_scale)
    """

    def __init__(self, clip, roi_dim=ROI_DIM, concat_views=None):
        super().__init__()
        if not hasattr(clip.visual, "forward_f2"):
            raise ValueError(f"PyramidCLIP needs a CLIP image tower with the f1/f2 split (preset image.backbone "
                             f"modified_resnet or vit); got {type(clip.visual).__name__}")
        self.clip = clip
        self.roi = RoiEncoder(clip.visual, roi_dim)
        self.concat_views = not has_batch_norm(clip.visual) if concat_views is None else bool(concat_views)

    def encode_views(self, image_global, image_local):
        """Both views through the image tower -> (v_global (B, E), v_local (B, E)), normalised."""
        if self.concat_views:
            batch = image_global.shape[0]
            features = self.clip.encode_image(ops.cat((image_global, image_local), axis=0))  # (2B, E)
            return features[:batch], features[batch:]
        return self.clip.encode_image(image_global), self.clip.encode_image(image_local)

    def encode_texts(self, tokens, summary_tokens):
        """Caption and summary through the text tower as one batch (exact: no BatchNorm) -> 2 x (B, E)."""
        batch = tokens.shape[0]
        features = self.clip.encode_text(ops.cat((tokens, summary_tokens), axis=0))  # (2B, E)
        return features[:batch], features[batch:]

    def construct(self, image_global, image_local, tokens, summary_tokens, roi, roi_count):
        v_global, v_local = self.encode_views(image_global, image_local)  # (B, E) each
        t_text, t_summary = self.encode_texts(tokens, summary_tokens)  # (B, E) each
        v_roi = self.roi(roi, roi_count)  # (B, E)
        return v_global, v_local, v_roi, t_text, t_summary, ops.exp(self.clip.logit_scale)


__all__ = ["PyramidCLIPPretrain", "has_batch_norm"]
