"""CLIP's ModifiedResNet image tower (RN50 and smaller), split as f = f2 ∘ f1 for PyramidCLIP.

Three differences from torchvision's ResNet (as in OpenAI CLIP): a 3-convolution stem with an
average pool instead of a max pool; anti-aliased strided bottlenecks (an average pool before the
strided 1x1 convolutions instead of a stride); attention pooling instead of global average pooling.

f1 = stem + the four residual stages -> feature map (B, 32*width, H/32, W/32).
f2 = the attention pool: one multi-head attention whose query is the first token of its input
     sequence. For an image that token is the mean of the map and position embeddings are added;
     PyramidCLIP's ROI path feeds its own sequence (a learned class token + embedded ROIs, no
     position embedding) to the same f2.
"""
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import Normal, initializer

from mindclip.models.layers import MultiheadAttention, normal_


def _conv(in_channels, out_channels, kernel_size, stride=1):
    """Bias-free convolution with PyTorch's symmetric padding (kernel // 2)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad",
                     padding=kernel_size // 2, has_bias=False)


def _bn(channels):
    """BatchNorm with PyTorch's defaults (eps 1e-5; torch momentum 0.1 is MindSpore momentum 0.9)."""
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.9)


class Downsample(nn.Cell):
    """Shortcut of a bottleneck that changes shape: average pool (stride), 1x1 conv, BatchNorm."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.pool = nn.AvgPool2d(stride, stride) if stride > 1 else nn.Identity()
        self.conv = _conv(in_channels, out_channels, 1)
        self.bn = _bn(out_channels)

    def construct(self, x):
        return self.bn(self.conv(self.pool(x)))


class Bottleneck(nn.Cell):
    """1x1 -> 3x3 -> (average pool when strided) -> 1x1 (x4 channels), plus the shortcut."""

    expansion = 4

    def __init__(self, in_channels, planes, stride=1):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = _conv(in_channels, planes, 1)
        self.bn1 = _bn(planes)
        self.conv2 = _conv(planes, planes, 3)
        self.bn2 = _bn(planes)
        self.avgpool = nn.AvgPool2d(stride, stride) if stride > 1 else nn.Identity()
        self.conv3 = _conv(planes, out_channels, 1)
        self.bn3 = _bn(out_channels)
        self.relu = nn.ReLU()
        self.has_downsample = stride > 1 or in_channels != out_channels
        self.downsample = Downsample(in_channels, out_channels, stride) if self.has_downsample else nn.Identity()

    def construct(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        return self.relu(out + self.downsample(x))


class AttentionPool2d(nn.Cell):
    """CLIP's attention pooling, built on the shared MultiheadAttention.

    CLIP's q/k/v projections are packed in `attn.in_proj_weight` (rows q, k, v) and its output
    projection `c_proj` (C -> E) is `attn.out_proj`: one attention whose output layer changes width.

    construct(feature_map (B, C, H, W)) -> (B, E)
    pool_tokens(tokens (B, 1+N, C), key_padding_mask (B, 1+N) bool or None) -> (B, E): attention of
        the first token over the whole sequence, no position embedding added (the ROI path's f2).
    """

    def __init__(self, spatial_size, width, heads, output_dim):
        super().__init__()
        self.width = width
        self.positional_embedding = ms.Parameter(
            initializer(Normal(width ** -0.5), (spatial_size * spatial_size + 1, width), ms.float32),
            name="positional_embedding")
        self.attn = MultiheadAttention(width, heads)
        self.attn.out_proj = nn.Dense(width, output_dim)  # CLIP's c_proj
        for param in (self.attn.in_proj_weight, self.attn.out_proj.weight):
            normal_(param, width ** -0.5)  # open_clip: q, k, v and c_proj ~ N(0, 1/C)

    def map_to_tokens(self, x):
        """(B, C, H, W) -> (B, 1+H*W, C): the spatial mean in front, then position embeddings added."""
        batch, channels, height, width = x.shape
        tokens = x.reshape(batch, channels, height * width).transpose(0, 2, 1)  # (B, HW, C)
        tokens = ops.cat((tokens.mean(axis=1, keep_dims=True), tokens), axis=1)  # (B, 1+HW, C)
        return tokens + self.positional_embedding.astype(tokens.dtype)

    def pool_tokens(self, tokens, key_padding_mask=None):
        query = tokens[:, :1]  # (B, 1, C)
        pooled = self.attn(query, tokens, None, key_padding_mask)  # (B, 1, E)
        return pooled.squeeze(1)  # (B, E)

    def construct(self, x):
        return self.pool_tokens(self.map_to_tokens(x))


class ModifiedResNet(nn.Cell):
    """CLIP's ModifiedResNet: `layers` bottlenecks per stage, stem width `width`, attention pooling.

    Args:
        layers: bottlenecks in each of the four stages, (3, 4, 6, 3) for RN50.
        width: stem width (64 for RN50); the last stage has 32 * width channels.
        heads: heads of the attention pool (32 * width // 64 in CLIP).
        embed_dim: output size of the attention pool's projection.
        image_size: input side, a multiple of 32 (sets the attention pool's position table).

    Interface (shared with the other image towers):
        stage_channels: (4w, 8w, 16w, 32w)
        forward_stages(images (B,3,H,W)) -> 4 maps (B, C_i, H/2^(i+2), W/2^(i+2))
        forward_f1(images) -> f2 input tokens (B, 1+HW/1024, 32w), mean token first, positions added
        forward_f2(tokens (B, 1+N, 32w), key_padding_mask (B, 1+N) bool or None) -> (B, E)
        construct(images) -> (B, E), not normalised
        f2_width: width of the tokens f2 takes (32 * width)
    """

    def __init__(self, layers=(3, 4, 6, 3), width=64, heads=32, embed_dim=1024, image_size=224):
        super().__init__()
        if len(layers) != 4 or image_size % 32:
            raise ValueError(f"ModifiedResNet needs 4 stage depths and an image size divisible by 32, "
                             f"got layers={layers}, image_size={image_size}")
        self.image_size = image_size
        self.embed_dim = embed_dim
        self.f2_width = width * 32
        self.stage_channels = tuple(width * 4 * 2 ** i for i in range(4))
        self.conv1 = _conv(3, width // 2, 3, stride=2)
        self.bn1 = _bn(width // 2)
        self.conv2 = _conv(width // 2, width // 2, 3)
        self.bn2 = _bn(width // 2)
        self.conv3 = _conv(width // 2, width, 3)
        self.bn3 = _bn(width)
        self.avgpool = nn.AvgPool2d(2, 2)
        self.relu = nn.ReLU()
        in_channels = width
        stages = []
        for i, depth in enumerate(layers):
            planes = width * 2 ** i
            blocks = [Bottleneck(in_channels, planes, 1 if i == 0 else 2)]
            blocks += [Bottleneck(planes * 4, planes) for _ in range(depth - 1)]
            stages.append(nn.SequentialCell(blocks))
            in_channels = planes * 4
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.attnpool = AttentionPool2d(image_size // 32, self.f2_width, heads, embed_dim)
        for stage in stages:  # open_clip: the last BatchNorm of each residual branch starts at zero
            for block in stage:
                block.bn3.gamma.set_data(initializer("zeros", block.bn3.gamma.shape, ms.float32))

    def stem(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.relu(self.bn3(self.conv3(x)))
        return self.avgpool(x)  # (B, w, H/4, W/4)

    def forward_stages(self, images):
        x = self.stem(images)
        c2 = self.layer1(x)  # (B, 4w, H/4, W/4)
        c3 = self.layer2(c2)  # (B, 8w, H/8, W/8)
        c4 = self.layer3(c3)  # (B, 16w, H/16, W/16)
        c5 = self.layer4(c4)  # (B, 32w, H/32, W/32)
        return c2, c3, c4, c5

    def forward_f1(self, images):
        return self.attnpool.map_to_tokens(self.forward_stages(images)[3])  # (B, 1+HW, 32w)

    def forward_f2(self, tokens, key_padding_mask=None):
        return self.attnpool.pool_tokens(tokens, key_padding_mask)  # (B, E)

    def construct(self, images):
        return self.forward_f2(self.forward_f1(images))
