"""CLIP's text tower: a GPT-2-style causal transformer pooled at the EOT token."""
import numpy as np
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import Normal, initializer

from mindclip.models.layers import LayerNorm, ResidualAttentionBlock, causal_mask, init_transformer_
from mindclip.tokenizer import EOT_ID, VOCAB_SIZE

NUM_STAGES = 4


class TextTransformer(nn.Cell):
    """Token + learned position embeddings, pre-LN causal blocks, ln_final, EOT pooling, projection.

    Args:
        context_length: rows of the position table; tokens of any length L <= context_length are
            accepted and use the first L positions (exact for causal attention: text-length buckets).
        vocab_size: rows of the token table: 49408 for CLIP's BPE, 49409 when MLM adds `[MASK]`.
        width, heads, layers: transformer size; `layers` must be a multiple of 4 (4 equal stages).
        embed_dim: output size of `text_projection` (W, E).
        act: `gelu` (exact erf GELU) or `quick_gelu`.

    Parameter names follow open_clip's text tower (`resblocks.{i}.attn.in_proj_weight`, `ln_final`, ...).
    """

    def __init__(self, context_length=77, vocab_size=VOCAB_SIZE, width=512, heads=8, layers=8, embed_dim=512,
                 act="gelu", mlp_ratio=4.0):
        super().__init__()
        if layers % NUM_STAGES or layers < NUM_STAGES:
            raise ValueError(f"text layers={layers} must be a positive multiple of {NUM_STAGES} "
                             f"(the tower is split into {NUM_STAGES} equal stages)")
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.width = width
        self.heads = heads
        self.num_layers = layers
        self.embed_dim = embed_dim
        self.stage_ends = tuple((i + 1) * layers // NUM_STAGES for i in range(NUM_STAGES))
        self.token_embedding = ms.Parameter(
            initializer(Normal(0.02), (vocab_size, width), ms.float32), name="token_embedding")
        self.positional_embedding = ms.Parameter(
            initializer(Normal(0.01), (context_length, width), ms.float32), name="positional_embedding")
        self.resblocks = nn.CellList([ResidualAttentionBlock(width, heads, mlp_ratio, act) for _ in range(layers)])
        self.ln_final = LayerNorm(width)
        self.text_projection = ms.Parameter(
            initializer(Normal(width ** -0.5), (width, embed_dim), ms.float32), name="text_projection")
        self.attn_mask = causal_mask(context_length)
        init_transformer_(self.resblocks, width)

    def forward_tokens(self, tokens, bidirectional=False):
        """tokens (B, L) int -> (final (B, L, W) after ln_final, 4 stage outputs (B, L, W) before it).

        Causal attention by default (CLIP: position i sees positions <= i). `bidirectional=True`
        (LightCLIP's masked-text pass with `loss.mlm_attention: bidirectional`, BERT-style) lets
        every position see every position up to its row's EOT; the padding after the EOT is masked
        out as keys. A row without an EOT masks nothing.
        """
        length = tokens.shape[1]
        x = ops.gather(self.token_embedding, tokens, 0)  # (B, L, W)
        x = x + self.positional_embedding[:length].astype(x.dtype)
        mask, padding = self.attn_mask[:length, :length], None  # (L, L)
        if bidirectional:
            is_eot = (tokens == EOT_ID).astype(ms.int32)  # (B, L)
            mask, padding = None, (ops.cumsum(is_eot, 1) - is_eot) > 0  # (B, L): True strictly after the EOT
        stages = ()
        for i in range(self.num_layers):
            x = self.resblocks[i](x, mask, padding)
            if i + 1 in self.stage_ends:
                stages = stages + (x,)
        return self.ln_final(x), stages

    def pool(self, final, tokens):
        """EOT pooling (the position of the largest id, as in CLIP) then projection -> (B, E)."""
        eot = ops.argmax(tokens, dim=-1).reshape(-1, 1, 1)  # (B, 1, 1)
        index = ops.broadcast_to(eot, (final.shape[0], 1, final.shape[2]))
        pooled = ops.gather_elements(final, 1, index).squeeze(1)  # (B, W)
        return ops.matmul(pooled, self.text_projection.astype(pooled.dtype))

    def project_tokens(self, final):
        """Every position through the text projection: (B, L, W) -> (B, L, E)."""
        return ops.matmul(final, self.text_projection.astype(final.dtype))

    def construct(self, tokens):
        final, _ = self.forward_tokens(tokens)  # (B, L, W)
        return self.pool(final, tokens)  # (B, E)


def open_clip_text_names(num_layers):
    """Map our parameter names to open_clip's text state-dict names (the CLIP model's, no prefix)."""
    names = {
        "token_embedding": "token_embedding.weight",
        "positional_embedding": "positional_embedding",
        "ln_final.weight": "ln_final.weight",
        "ln_final.bias": "ln_final.bias",
        "text_projection": "text_projection",
    }
    block_params = ("ln_1.weight", "ln_1.bias", "attn.in_proj_weight", "attn.in_proj_bias",
                    "attn.out_proj.weight", "attn.out_proj.bias", "ln_2.weight", "ln_2.bias",
                    "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias")
    for i in range(num_layers):
        for param in block_params:
            names[f"resblocks.{i}.{param}"] = f"transformer.resblocks.{i}.{param}"
    return names


def load_open_clip_text_state(tower, state, prefix=""):
    """Copy open_clip text weights into `tower` (a TextTransformer).

    Args:
        tower: the TextTransformer to fill.
        state: open_clip state dict as {name: np.ndarray} (torch layouts: Linear weight (out, in),
            packed attention `in_proj_weight` (3W, W), `text_projection` (W, E)): the same layouts as ours.
        prefix: prepended to every open_clip name, e.g. "" for a CLIP state dict or "text." for CustomTextCLIP.

    Every tower parameter must be present with the same shape; a clear error lists what is not.
    """
    params = dict(tower.parameters_and_names())
    missing, mismatched = [], []
    for ours, theirs in open_clip_text_names(tower.num_layers).items():
        key = prefix + theirs
        if key not in state:
            missing.append(key)
        elif tuple(np.shape(state[key])) != tuple(params[ours].shape):
            mismatched.append(f"{key}: {tuple(np.shape(state[key]))} vs {tuple(params[ours].shape)}")
    if missing or mismatched:
        raise ValueError(f"open_clip text state does not fit the tower: missing {missing}, "
                         f"shape mismatch (theirs vs ours) {mismatched}")
    for ours, theirs in open_clip_text_names(tower.num_layers).items():
        value = np.asarray(state[prefix + theirs], np.float32)
        params[ours].set_data(ms.Tensor(value, params[ours].dtype))
