"""CLIP: an image tower and a text tower projected into one normalised embedding space."""
import math

import mindspore as ms
from mindspore import nn, ops

from mindclip.models.layers import l2_normalize

INIT_LOGIT_SCALE = math.log(1 / 0.07)


class CLIP(nn.Cell):
    """The inference contract of every mindclip model.

    Attributes: `visual` (MindcvImageTower, ModifiedResNet or VisionTransformer), `text` (TextTransformer), `logit_scale` (scalar Parameter,
    init ln(1/0.07); clamping to ln(100) is the train step's job), `embed_dim`.
    """

    def __init__(self, visual, text, init_logit_scale=INIT_LOGIT_SCALE):
        super().__init__()
        if visual.embed_dim != text.embed_dim:
            raise ValueError(f"image embed_dim {visual.embed_dim} != text embed_dim {text.embed_dim}")
        self.visual = visual
        self.text = text
        self.embed_dim = text.embed_dim
        self.logit_scale = ms.Parameter(ms.Tensor(init_logit_scale, ms.float32), name="logit_scale")

    def encode_image(self, images, normalize=True):
        """images (B, 3, H, W) float32 -> (B, E)."""
        features = self.visual(images)
        return l2_normalize(features) if normalize else features

    def encode_text(self, tokens, normalize=True):
        """tokens (B, L) int32, L <= context_length -> (B, E)."""
        features = self.text(tokens)
        return l2_normalize(features) if normalize else features

    def construct(self, images, tokens):
        image_features = self.encode_image(images)  # (B, E)
        text_features = self.encode_text(tokens)  # (B, E)
        return image_features, text_features, ops.exp(self.logit_scale)


class ImageEncoder(nn.Cell):
    """images (B, 3, H, W) -> embeddings (B, E) float32, L2-normalised in float32 when `normalize`.

    `encode_image` as a cell of its own: what evaluation compiles and export writes to MINDIR. Only
    the parameters the tower uses reach a traced graph (never the pre-training cells).
    """

    def __init__(self, model, normalize=True):
        super().__init__()
        self.model = model
        self.normalize = normalize

    def construct(self, images):
        features = self.model.encode_image(images, normalize=False).astype(ms.float32)  # (B, E)
        return l2_normalize(features) if self.normalize else features


class TextEncoder(nn.Cell):
    """tokens (B, L) int32 -> embeddings (B, E) float32 (EOT-pooled), L2-normalised when `normalize`."""

    def __init__(self, model, normalize=True):
        super().__init__()
        self.model = model
        self.normalize = normalize

    def construct(self, tokens):
        features = self.model.encode_text(tokens, normalize=False).astype(ms.float32)  # (B, E)
        return l2_normalize(features) if self.normalize else features
