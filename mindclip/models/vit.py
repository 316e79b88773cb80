"""CLIP's Vision Transformer (ViT-B/32, ViT-B/16), with PyramidCLIP's LeFF blocks and f = f2 ∘ f1 split.

f1 = patch embedding, class token, position embeddings, ln_pre and the first `f1_layers` blocks
     (PyramidCLIP's Ls; these may use LeFF instead of the MLP).
f2 = the remaining blocks, ln_post on the class token, projection. PyramidCLIP's ROI path feeds
     its own sequence (learned class token + embedded ROIs, no position embedding) to f2.
Parameter names follow open_clip's VisionTransformer (`conv1`, `class_embedding`, `ln_pre`,
`resblocks.{i}`, `ln_post`, `proj`) so that CLIP weights map one to one.
"""
import numpy as np
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import Normal, initializer

from mindclip.models.layers import LayerNorm, ResidualAttentionBlock, init_transformer_, make_activation

NUM_STAGES = 4


class LeFF(nn.Cell):
    """Locally-enhanced feed-forward: Dense up, 3x3 depth-wise conv on the patch grid, activation, Dense down.

    The class token (position 0) bypasses it: its output row is zero, so in the residual block
    `x + leff(ln_2(x))` the class token leaves the feed-forward step unchanged. The depth-wise
    convolution starts as the identity (centre tap 1, bias 0), so a LeFF initialised from a CLIP
    MLP (`c_fc`, `c_proj`, same names) computes that MLP on the patches until it is trained.

    construct(x (B, 1+G*G, W)) -> (B, 1+G*G, W)
    """

    def __init__(self, width, hidden, grid_size, act="gelu"):
        super().__init__()
        self.grid_size = grid_size
        self.c_fc = nn.Dense(width, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, pad_mode="pad", padding=1, group=hidden, has_bias=True,
                                weight_init=_identity_depthwise_kernel(hidden), bias_init="zeros")
        self.act = make_activation(act)
        self.c_proj = nn.Dense(hidden, width)
        self.c_fc.bias.set_data(initializer("zeros", (hidden,), ms.float32))
        self.c_proj.bias.set_data(initializer("zeros", (width,), ms.float32))

    def construct(self, x):
        batch, length, _ = x.shape
        patches = self.c_fc(x[:, 1:])  # (B, G*G, Hd)
        hidden = patches.shape[2]
        grid = patches.transpose(0, 2, 1).reshape(batch, hidden, self.grid_size, self.grid_size)  # (B, Hd, G, G)
        grid = self.act(self.dwconv(grid))
        patches = grid.reshape(batch, hidden, length - 1).transpose(0, 2, 1)  # (B, G*G, Hd)
        patches = self.c_proj(patches)  # (B, G*G, W)
        return ops.cat((ops.zeros_like(x[:, :1]), patches), axis=1)  # class row 0: it bypasses LeFF


def _identity_depthwise_kernel(channels):
    """(C, 1, 3, 3) depth-wise kernel that copies its input: centre tap 1, others 0."""
    kernel = np.zeros((channels, 1, 3, 3), np.float32)
    kernel[:, :, 1, 1] = 1.0
    return ms.Tensor(kernel)


class LeFFBlock(ResidualAttentionBlock):
    """The pre-LN transformer block with LeFF in place of the MLP (same parameter names plus `mlp.dwconv`)."""

    def __init__(self, width, heads, grid_size, mlp_ratio=4.0, act="gelu"):
        super().__init__(width, heads, mlp_ratio, act)
        self.mlp = LeFF(width, int(width * mlp_ratio), grid_size, act)


class VisionTransformer(nn.Cell):
    """CLIP ViT image tower.

    Args:
        image_size, patch_size: square input side and patch side (image_size % patch_size == 0).
        width, layers, heads, mlp_ratio: transformer size.
        embed_dim: output size of `proj` (W, E).
        act: `gelu` or `quick_gelu` (OpenAI weights).
        f1_layers: blocks in f1 (PyramidCLIP's Ls); the remaining `layers - f1_layers` are f2.
            Default: 3/4 of the blocks (9 of 12).
        leff: use LeFF in the f1 blocks (PyramidCLIP) instead of the plain MLP.

    Interface (shared with the other image towers):
        stage_channels: (W, W, W, W)
        forward_stages(images) -> 4 maps (B, W, G, G): the patch tokens after 4 evenly spaced block groups
        forward_f1(images) -> tokens (B, 1+G*G, W)
        forward_f2(tokens (B, 1+N, W), key_padding_mask (B, 1+N) bool or None) -> (B, E): no position embedding
        construct(images) -> (B, E), not normalised
        f2_width: W
    """

    def __init__(self, image_size=224, patch_size=32, width=768, layers=12, heads=12, embed_dim=512,
                 act="gelu", mlp_ratio=4.0, f1_layers=None, leff=False):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"ViT image_size {image_size} is not a multiple of patch_size {patch_size}")
        f1_layers = layers * 3 // 4 if f1_layers is None else f1_layers
        if not 0 <= f1_layers <= layers:
            raise ValueError(f"ViT f1_layers={f1_layers} must be between 0 and layers={layers}")
        self.image_size = image_size
        self.grid_size = image_size // patch_size
        self.num_layers = layers
        self.f1_layers = f1_layers
        self.embed_dim = embed_dim
        self.f2_width = width
        self.stage_channels = (width,) * NUM_STAGES
        self.stage_ends = tuple(max(1, round(layers * (i + 1) / NUM_STAGES)) for i in range(NUM_STAGES))
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, patch_size, stride=patch_size, pad_mode="valid", has_bias=False)
        self.class_embedding = ms.Parameter(initializer(Normal(scale), (width,), ms.float32), name="class_embedding")
        self.positional_embedding = ms.Parameter(
            initializer(Normal(scale), (self.grid_size ** 2 + 1, width), ms.float32), name="positional_embedding")
        self.ln_pre = LayerNorm(width)
        self.resblocks = nn.CellList([
            LeFFBlock(width, heads, self.grid_size, mlp_ratio, act) if leff and i < f1_layers
            else ResidualAttentionBlock(width, heads, mlp_ratio, act)
            for i in range(layers)])
        self.ln_post = LayerNorm(width)
        self.proj = ms.Parameter(initializer(Normal(scale), (width, embed_dim), ms.float32), name="proj")
        init_transformer_(self.resblocks, width)

    def embed(self, images):
        """(B, 3, H, W) -> (B, 1+G*G, W): patches, class token in front, positions added, ln_pre."""
        x = self.conv1(images)  # (B, W, G, G)
        batch, width = x.shape[0], x.shape[1]
        x = x.reshape(batch, width, -1).transpose(0, 2, 1)  # (B, G*G, W)
        cls = ops.broadcast_to(self.class_embedding.astype(x.dtype).reshape(1, 1, width), (batch, 1, width))
        x = ops.cat((cls, x), axis=1) + self.positional_embedding.astype(x.dtype)  # (B, 1+G*G, W)
        return self.ln_pre(x)

    def _to_map(self, tokens):
        """Patch tokens (B, 1+G*G, W) -> (B, W, G, G), the class token dropped."""
        batch, _, width = tokens.shape
        return tokens[:, 1:].transpose(0, 2, 1).reshape(batch, width, self.grid_size, self.grid_size)

    def forward_stages(self, images):
        x = self.embed(images)
        outputs = ()
        for i in range(self.num_layers):
            x = self.resblocks[i](x)  # (B, 1+G*G, W)
            outputs = outputs + (x,)
        ends = self.stage_ends
        return (self._to_map(outputs[ends[0] - 1]), self._to_map(outputs[ends[1] - 1]),
                self._to_map(outputs[ends[2] - 1]), self._to_map(outputs[ends[3] - 1]))

    def forward_f1(self, images):
        x = self.embed(images)  # (B, 1+G*G, W)
        for i in range(self.f1_layers):
            x = self.resblocks[i](x)
        return x

    def forward_f2(self, tokens, key_padding_mask=None):
        x = tokens  # (B, 1+N, W)
        for i in range(self.f1_layers, self.num_layers):
            x = self.resblocks[i](x, None, key_padding_mask)
        pooled = self.ln_post(x[:, 0])  # (B, W)
        return ops.matmul(pooled, self.proj.astype(pooled.dtype))  # (B, E)

    def construct(self, images):
        return self.forward_f2(self.forward_f1(images))
