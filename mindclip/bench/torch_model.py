"""mindclip's `lightclip_mobilenetv2` rebuilt from open_clip parts, with its objective (PyTorch only).

open_clip's `CLIP`: image tower its `TimmModel` around timm's `mobilenetv2_100` (random init) cut
like mindcv's `features_only` model at the 320-channel block, average-pooled and projected without
bias; text tower open_clip's (exact GELU, EOT pooling). lightclip adds the heads of
lightclip_torch.py and a [MASK] row to the token table. ut/test_torch_reference_parity.py checks
this file and lightclip_torch.py against mindclip through a golden made from them.
"""
import collections

import torch
import torch.nn.functional as F
from torch import nn

from mindclip.bench import lightclip_torch as lc
from mindclip.tokenizer import VOCAB_SIZE

Arch = collections.namedtuple("Arch", "embed_dim width heads layers vocab_size context_length image_size")
BENCH_ARCH = Arch(512, 512, 8, 8, VOCAB_SIZE, 77, 224)  # the lightclip_mobilenetv2 preset
TIMM_TRUNK = "mobilenetv2_100"
STAGE_BLOCKS = (1, 2, 4, 6)  # timm's blocks ending mindcv's out_indices (3, 6, 13, 17): groups 1-2-3-4-3-3-1
STAGE_CHANNELS = (24, 32, 96, 320)


def build_clip(oc, arch):
    vision_cfg = dict(timm_model_name=TIMM_TRUNK, timm_model_pretrained=False, timm_pool="avg",
                      timm_proj="linear", timm_proj_bias=False, image_size=arch.image_size)
    text_cfg = dict(context_length=arch.context_length, vocab_size=arch.vocab_size, width=arch.width,
                    heads=arch.heads, layers=arch.layers)
    clip = oc.model.CLIP(arch.embed_dim, vision_cfg, text_cfg, quick_gelu=False)  # nn.GELU: exact
    clip.visual.trunk.conv_head, clip.visual.trunk.bn2 = nn.Identity(), nn.Identity()  # the 1280-channel head
    clip.visual.head.proj = nn.Linear(STAGE_CHANNELS[3], arch.embed_dim, bias=False)
    return clip


def image_stages(visual, images):
    """images (B, 3, H, W) -> 4 maps (B, C_i, H/s_i, W/s_i), C = (24, 32, 96, 320), s = (4, 8, 16, 32)."""
    trunk = visual.trunk
    x = trunk.bn1(trunk.conv_stem(images))  # (B, 32, H/2, W/2)
    stages = []
    for index, block in enumerate(trunk.blocks):
        x = block(x)
        if index in STAGE_BLOCKS:
            stages.append(x)
    return stages


def image_pool(visual, last_stage):
    """(B, 320, h, w) -> (B, E): the TimmModel's average pool and projection (= visual(images))."""
    return visual.head(visual.trunk.forward_head(last_stage))


def text_stages(clip, tokens):
    """tokens (B, L) -> (ln_final output (B, L, W), the outputs of the 4 stage-ending layers before it)."""
    length = tokens.shape[1]
    x = clip.token_embedding(tokens) + clip.positional_embedding[:length]
    ends = [(i + 1) * len(clip.transformer.resblocks) // 4 - 1 for i in range(4)]  # (1, 3, 5, 7) of 8
    x, stages = clip.transformer.forward_intermediates(x, attn_mask=clip.attn_mask[:length, :length], indices=ends)
    return clip.ln_final(x), stages


class LightCLIPPretrain(nn.Module):
    """An open_clip CLIP plus LightCLIP's heads: mindclip's LightCLIPPretrain, the same 7 outputs."""

    def __init__(self, oc, clip, arch):
        super().__init__()
        self.clip = clip
        self.image_token_proj = nn.Linear(STAGE_CHANNELS[3], arch.embed_dim, bias=False)
        self.fusion2 = lc.ImageTextFusion(oc, STAGE_CHANNELS[1], arch.width, arch.heads)
        self.fusion3 = lc.ImageTextFusion(oc, STAGE_CHANNELS[2], arch.width, arch.heads)
        self.mlm_text_head = lc.MLMHead(oc, arch.width, arch.vocab_size)
        self.mlm_fuse_head = lc.MLMHead(oc, 2 * arch.width, arch.vocab_size)

    def forward(self, images, tokens, mlm_tokens, mlm_positions):
        clip = self.clip
        stages = image_stages(clip.visual, images)  # 4 x (B, C_i, H_i, W_i)
        final, _ = text_stages(clip, tokens)  # (B, L, W)
        eot = final[torch.arange(final.shape[0]), tokens.argmax(dim=-1)]  # (B, W)
        text_logits, fuse_logits = self.mlm_logits(stages, mlm_tokens, mlm_positions)
        return (F.normalize(image_pool(clip.visual, stages[3]), dim=-1),
                F.normalize(eot @ clip.text_projection, dim=-1), clip.logit_scale.exp(),
                self.image_token_proj(lc.flatten_map(stages[3])),  # (B, h*w, E)
                final @ clip.text_projection, text_logits, fuse_logits)  # (B, L, E), 2 x (B, K, V)

    def mlm_logits(self, stages, mlm_tokens, mlm_positions):
        _, (_, t2, t3, t4) = text_stages(self.clip, mlm_tokens)  # 3 x (B, L, W)
        text_logits = self.mlm_text_head(lc.gather_positions(t4, mlm_positions))
        # cross-attention treats each query on its own: fusing only the K gathered rows is exact
        fused2 = self.fusion2(lc.gather_positions(t2, mlm_positions), stages[1])  # (B, K, W)
        fused3 = self.fusion3(lc.gather_positions(t3, mlm_positions), stages[2])
        return text_logits, self.mlm_fuse_head(torch.cat((fused2, fused3), dim=-1))


def build_network(oc, method, arch=BENCH_ARCH, seed=0):
    """(net, clip, objective(net, batch, progress) -> (total, parts)) for "clip" or "lightclip"."""
    torch.manual_seed(seed)
    if method == "clip":
        clip, clip_loss = build_clip(oc, arch), oc.loss.ClipLoss()

        def clip_objective(net, batch, progress):
            inst = clip_loss(*net(batch["image"], batch["tokens"]))
            return inst, {"inst": inst}

        return clip, clip, clip_objective
    arch = arch._replace(vocab_size=arch.vocab_size + 1)  # [MASK] = 49408 gets a row
    clip = build_clip(oc, arch)
    net = LightCLIPPretrain(oc, clip, arch)

    def lightclip_objective(net, batch, progress):
        outputs = net(batch["image"], batch["tokens"], batch["mlm_tokens"], batch["mlm_positions"])
        return lc.lightclip_loss(outputs, batch["tokens"], batch["mlm_labels"], progress)

    return net, clip, lightclip_objective
