"""LightCLIP pre-training cells (token projection, image-to-text fusion, MLM heads). Never exported.

Vocabulary decision: the `[MASK]` id 49408 must have a row in the CLIP's own token table, so a
LightCLIP run with MLM builds its CLIP with the override `text.vocab_size=49409`
(`create_model(name, **{"text.vocab_size": 49409})`); `LightCLIPPretrain` checks this and refuses
a 49408-row table. The trained CLIP (and its checkpoint) then keeps 49409 rows; evaluation and
export build it with the same override (the resolved config is saved beside the checkpoint).
"""
import mindspore as ms
from mindspore import nn, ops

from mindclip.models.layers import CrossAttentionBlock, LayerNorm, l2_normalize
from mindclip.tokenizer import MASK_ID

MLM_ATTENTIONS = ("causal", "bidirectional")


def gather_positions(x, positions):
    """x (B, L, D), positions (B, K) int -> (B, K, D): the rows at the chosen positions."""
    index = positions.astype(ms.int32).reshape(positions.shape[0], positions.shape[1], 1)
    index = ops.broadcast_to(index, (positions.shape[0], positions.shape[1], x.shape[2]))
    return ops.gather_elements(x, 1, index)


def flatten_map(feature_map):
    """(B, C, H, W) -> (B, H*W, C) tokens in row-major grid order."""
    batch, channels = feature_map.shape[0], feature_map.shape[1]
    return feature_map.reshape(batch, channels, -1).transpose(0, 2, 1)


class MLMHead(nn.Cell):
    """LayerNorm then Dense(width -> vocab_size)."""

    def __init__(self, width, vocab_size):
        super().__init__()
        self.ln = LayerNorm(width)
        self.fc = nn.Dense(width, vocab_size)

    def construct(self, x):
        return self.fc(self.ln(x))  # (B, K, V)


class ImageTextFusion(nn.Cell):
    """Text positions attend to one image stage: 1x1 conv (C -> W), flatten, cross-attention block.

    A side branch: it reads the text stage output and returns a fused copy; nothing flows back
    into the text tower. No position embedding is added to the image tokens.
    """

    def __init__(self, image_channels, width, heads, mlp_ratio=4.0):
        super().__init__()
        self.image_proj = nn.Conv2d(image_channels, width, 1, has_bias=True)
        self.block = CrossAttentionBlock(width, heads, mlp_ratio)

    def construct(self, text, image_map):
        image_tokens = flatten_map(self.image_proj(image_map))  # (B, H*W, W)
        return self.block(text, image_tokens)  # (B, K, W)


class LightCLIPPretrain(nn.Cell):
    """A CLIP plus LightCLIP's pre-training heads; the image tower runs once per call.

    Args:
        clip: the CLIP being trained (held as `self.clip`; its weights are the model checkpoint).
        token_loss: build `image_token_proj` (Dense C4 -> E) for the token-level alignment loss.
        mlm: build the fusion branches (text stages 2 and 3 attend to image stages 2 and 3) and the
            MLM heads. Needs `clip.text.vocab_size == vocab_size` (49409: see the module docstring).
        vocab_size: output size of both MLM heads.
        fusion_heads: attention heads of the fusion blocks (default: the text tower's heads).
        mlm_attention: attention of the masked-text pass: `causal` (the text tower's own mask: a
            masked word is predicted from its left context and the image) or `bidirectional`
            (BERT-style: it also sees the words to its right). The caption pass that gives
            `text_features` and `text_tokens` is always causal, as at inference.

    construct(images (B,3,H,W) f32, tokens (B,L) i32, mlm_tokens (B,L) i32, mlm_positions (B,K) i32) ->
        image_features (B, E)            normalised
        text_features (B, E)             normalised
        logit_scale_exp ()               exp(clip.logit_scale)
        image_tokens (B, H4*W4, E)       last image stage through image_token_proj (not normalised)
        text_tokens (B, L, E)            ln_final outputs through text_projection (not normalised)
        mlm_text_logits (B, K, V)        LN + Dense on the masked text's stage-4 output at mlm_positions
        mlm_fuse_logits (B, K, V)        LN + Dense on concat(fused stage 2, fused stage 3) at mlm_positions
    With `token_loss=False` the two token outputs are zeros of the same shapes; with `mlm=False` the
    two logits are zeros of shape (B, K, V), and `mlm_tokens` / `mlm_positions` may be None (K = 0).
    """

    def __init__(self, clip, token_loss=True, mlm=True, vocab_size=MASK_ID + 1, fusion_heads=None,
                 mlm_attention="causal"):
        super().__init__()
        if mlm_attention not in MLM_ATTENTIONS:
            raise ValueError(f"mlm_attention must be one of {', '.join(MLM_ATTENTIONS)}, got {mlm_attention!r}")
        self.clip = clip
        self.token_loss = token_loss
        self.mlm = mlm
        self.mlm_attention = mlm_attention
        self.mlm_bidirectional = mlm_attention == "bidirectional"
        self.vocab_size = vocab_size
        self.embed_dim = clip.embed_dim
        width, channels = clip.text.width, clip.visual.stage_channels
        if token_loss:
            self.image_token_proj = nn.Dense(channels[3], clip.embed_dim, has_bias=False)
        if mlm:
            if clip.text.vocab_size != vocab_size:
                raise ValueError(
                    f"MLM needs the text token table to have {vocab_size} rows ([MASK] = {MASK_ID}), "
                    f"the CLIP has {clip.text.vocab_size}: build it with create_model(name, "
                    f"**{{'text.vocab_size': {vocab_size}}})")
            heads = fusion_heads or clip.text.heads
            self.fusion2 = ImageTextFusion(channels[1], width, heads)
            self.fusion3 = ImageTextFusion(channels[2], width, heads)
            self.mlm_text_head = MLMHead(width, vocab_size)
            self.mlm_fuse_head = MLMHead(2 * width, vocab_size)

    def _token_outputs(self, last_map, final):
        if not self.token_loss:
            batch, length = final.shape[0], final.shape[1]
            grid = last_map.shape[2] * last_map.shape[3]
            return (ops.zeros((batch, grid, self.embed_dim), final.dtype),
                    ops.zeros((batch, length, self.embed_dim), final.dtype))
        image_tokens = self.image_token_proj(flatten_map(last_map))  # (B, H4*W4, E)
        return image_tokens, self.clip.text.project_tokens(final)  # (B, L, E)

    def mlm_logits(self, stages, mlm_tokens, mlm_positions):
        """(mlm_text_logits, mlm_fuse_logits), each (B, K, V), from the 4 image stages and the masked text."""
        if not self.mlm:
            batch = stages[0].shape[0]
            count = 0 if mlm_positions is None else mlm_positions.shape[1]
            zeros = ops.zeros((batch, count, self.vocab_size), ms.float32)
            return zeros, zeros
        _, (_, t2, t3, t4) = self.clip.text.forward_tokens(mlm_tokens, self.mlm_bidirectional)  # 4 x (B, L, W)
        text_logits = self.mlm_text_head(gather_positions(t4, mlm_positions))  # (B, K, V)
        # cross-attention treats each query on its own: fusing only the K gathered rows is exact
        fused2 = self.fusion2(gather_positions(t2, mlm_positions), stages[1])  # (B, K, W)
        fused3 = self.fusion3(gather_positions(t3, mlm_positions), stages[2])  # (B, K, W)
        fuse_logits = self.mlm_fuse_head(ops.concat((fused2, fused3), axis=-1))  # (B, K, V)
        return text_logits, fuse_logits

    def construct(self, images, tokens, mlm_tokens=None, mlm_positions=None):
        stages = self.clip.visual.forward_stages(images)  # 4 x (B, C_i, H_i, W_i)
        image_features = l2_normalize(self.clip.visual.pool(stages[3]))  # (B, E)
        final, _ = self.clip.text.forward_tokens(tokens)  # (B, L, W)
        text_features = l2_normalize(self.clip.text.pool(final, tokens))  # (B, E)
        image_tokens, text_tokens = self._token_outputs(stages[3], final)
        text_logits, fuse_logits = self.mlm_logits(stages, mlm_tokens, mlm_positions)
        return (image_features, text_features, ops.exp(self.clip.logit_scale), image_tokens, text_tokens,
                text_logits, fuse_logits)
