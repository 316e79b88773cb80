"""LightCLIP's L_token: token-level alignment by optimal bipartite matching (paired samples only).

Per sample, image tokens (L1) and the caption's word tokens are matched one to one by the Hungarian
algorithm on the cost 1 - cosine (host-side op, zero backward); the loss gathers the matched costs
in the graph, so its gradient reaches both towers through the matched pairs only.
"""
import mindspore as ms
from mindspore import ops

from mindclip.ops.hungarian import hungarian_match
from mindclip.tokenizer import EOT_ID, MASK_ID, PAD_ID, SOT_ID


def text_word_mask(tokens, sot=SOT_ID, eot=EOT_ID, pad=PAD_ID, mask_id=MASK_ID):
    """(B, L) bool Tensor, True at word tokens: not pad, SOT, EOT or [MASK]."""
    return (tokens != pad) & (tokens != sot) & (tokens != eot) & (tokens != mask_id)


def _unit(x, eps=1e-12):
    """L2-normalise the last axis (rsqrt form: ops.L2Normalize's backward is ~100x slower on CPU)."""
    return x * ops.rsqrt((x * x).sum(axis=-1, keepdims=True) + eps)


def token_cost(image_tokens, text_tokens):
    """(B, L1, L2) fp32 cost 1 - cosine(image token i, text token j)."""
    image_unit = _unit(image_tokens.astype(ms.float32))  # (B, L1, D)
    text_unit = _unit(text_tokens.astype(ms.float32))  # (B, L2, D)
    return 1.0 - ops.bmm(image_unit, text_unit.transpose(0, 2, 1))


def token_alignment_sums(image_tokens, text_tokens, text_valid):
    """(sum, count): the summed mean matched cost of the samples that have a word, and their number.

    `token_alignment_loss` is sum / max(count, 1). The pair lets a caller average over a batch that
    is split into micro-batches or ranks exactly as over the whole batch (mindclip/train/accumulation.py).

    Args:
        image_tokens: (B, L1, D) image tokens (e.g. the projected last-stage feature map).
        text_tokens: (B, L2, D) projected text tokens.
        text_valid: (B, L2) bool/int, non-zero at word tokens (see `text_word_mask`).

    Returns:
        Two scalar fp32 Tensors.
    """
    cost = token_cost(image_tokens, text_tokens)  # (B, L1, L2)
    batch, _, text_len = cost.shape
    image_index, matched = hungarian_match(cost, text_valid)  # (B, L2) i32, (B, L2) f32
    index = image_index.reshape(batch, 1, text_len)
    matched_cost = ops.gather_elements(cost, 1, index).reshape(batch, text_len)  # (B, L2)
    pair_count = matched.sum(axis=-1)  # (B,)
    sample_cost = (matched_cost * matched).sum(axis=-1) / ops.maximum(pair_count, 1.0)  # (B,)
    has_word = (pair_count > 0).astype(ms.float32)  # (B,)
    return (sample_cost * has_word).sum(), has_word.sum()


def token_alignment_loss(image_tokens, text_tokens, text_valid):
    """Mean matched cost per sample, averaged over samples that have at least one word.

    Args and shapes as `token_alignment_sums`. Returns a scalar fp32 Tensor; 0 (not NaN) when no
    sample in the batch has a word.
    """
    total, count = token_alignment_sums(image_tokens, text_tokens, text_valid)
    return total / ops.maximum(count, 1.0)
