"""CLIP: an image tower and a text tower projected into one normalised embedding space."""
import math

import mindspore as ms
from mindspore import nn, ops

from mindclip.models.layers import l2_normalize

INIT_LOGIT_SCALE = math.log(1 / 0.07)


class CLIP(nn.Cell):
    """The inference contract of every mindclip model.

    Attributes: `visual` (ImageTower), `text` (TextTransformer), `logit_scale` (scalar Parameter,
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
    """`clip.encode_image` as a cell of its own, to compile (graph mode) or export the image tower alone."""

    def __init__(self, clip, normalize=True):
        super().__init__()
        self.clip = clip
        self.normalize = normalize

    def construct(self, images):
        return self.clip.encode_image(images, self.normalize)  # (B, E)


class TextEncoder(nn.Cell):
    """`clip.encode_text` as a cell of its own, to compile (graph mode) or export the text tower alone."""

    def __init__(self, clip, normalize=True):
        super().__init__()
        self.clip = clip
        self.normalize = normalize

    def construct(self, tokens):
        return self.clip.encode_text(tokens, self.normalize)  # (B, E)
