"""PyramidCLIP's ROI path: detector ROI features -> the image tower's rear part f2 -> relation embedding.

v_r = normalise(f2([class token; Dense(roi)])), with the padded ROIs masked out of attention and no
position embedding (the 4 box coordinates inside each 2052-d ROI vector carry the position).
Used only while pre-training; never exported.
"""
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import Normal, initializer

from mindclip.models.layers import l2_normalize

ROI_DIM = 2052  # 2048-d Faster R-CNN ROI-pool feature + normalised box (x1, y1, x2, y2)


class RoiEncoder(nn.Cell):
    """The ROI embedding φ (Dense to the f2 width + a learned class token) and the shared f2.

    Args:
        visual: the image tower (ModifiedResNet or VisionTransformer) whose `forward_f2` is used.
            Its weights stay owned by the CLIP model: this cell keeps the tower out of its own
            parameter list (no `visual.` copies in checkpoints), while gradients still reach it.
        roi_dim: size of one ROI vector (2052).

    construct(roi (B, M, roi_dim) f32, roi_count (B,) int: valid rows, the rest is padding,
              normalize=True) -> (B, E)
    Own parameters: `proj.weight` (W, roi_dim), `proj.bias` (W,), `class_embedding` (W,).
    """

    def __init__(self, visual, roi_dim=ROI_DIM):
        super().__init__()
        width = visual.f2_width
        self.roi_dim = roi_dim
        self.proj = nn.Dense(roi_dim, width)
        self.class_embedding = ms.Parameter(
            initializer(Normal(width ** -0.5), (width,), ms.float32), name="class_embedding")
        self._tower = (visual,)  # a tuple is not registered as a child cell

    def embed(self, roi, roi_count):
        """-> tokens (B, 1+M, W) with the class token first, key_padding_mask (B, 1+M) bool (True = padding)."""
        batch, num_rois, _ = roi.shape
        tokens = self.proj(roi)  # (B, M, W)
        width = tokens.shape[2]
        cls = ops.broadcast_to(self.class_embedding.astype(tokens.dtype).reshape(1, 1, width), (batch, 1, width))
        tokens = ops.cat((cls, tokens), axis=1)  # (B, 1+M, W)
        positions = ops.arange(num_rois + 1, dtype=ms.int32).reshape(1, -1)  # class token = position 0
        padding = positions > roi_count.astype(ms.int32).reshape(-1, 1)  # (B, 1+M)
        return tokens, padding

    def construct(self, roi, roi_count, normalize=True):
        tokens, padding = self.embed(roi, roi_count)
        relation = self._tower[0].forward_f2(tokens, padding)  # (B, E)
        return l2_normalize(relation) if normalize else relation
