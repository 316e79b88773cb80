"""PyTorch port of mindclip's LightCLIP objective on one process (PyTorch only): the heads of
mindclip/models/lightclip.py, the losses of mindclip/losses/ and `LightClipObjective`'s weighting
(ut/test_torch_reference_parity.py checks it against mindclip through a golden)."""
import torch
import torch.nn.functional as F
from torch import nn

from mindclip.data.masking import IGNORE_LABEL
from mindclip.ops.matching import match_tokens  # the host Hungarian (NumPy, SciPy): mindclip's own
from mindclip.tokenizer import EOT_ID, MASK_ID, PAD_ID, SOT_ID

LOSS_WEIGHTS = {"inst": 0.8, "token": 0.1, "mlm": 0.1}  # the paper's; L_mlm = (text + fused) / 2
SOFT_TARGETS = {"r1": 0.33, "r2": 0.66, "delta": 0.2}
PART_NAMES = ("inst", "token", "mlm_text", "mlm_fuse")


class MLMHead(nn.Module):
    def __init__(self, oc, width, vocab_size):
        super().__init__()
        self.ln = oc.transformer.LayerNorm(width)
        self.fc = nn.Linear(width, vocab_size)

    def forward(self, x):
        return self.fc(self.ln(x))  # (B, K, V)


class ImageTextFusion(nn.Module):
    """1x1 conv (C -> W) of an image stage, flattened, then open_clip's cross-attention block
    (queries = text): x + attn(ln_1(x), ln_1_kv(image)), x + mlp(ln_2(x)), = mindclip's CrossAttentionBlock."""

    def __init__(self, oc, image_channels, width, heads):
        super().__init__()
        self.image_proj = nn.Conv2d(image_channels, width, 1, bias=True)
        self.block = oc.transformer.ResidualAttentionBlock(
            width, heads, mlp_ratio=4.0, act_layer=nn.GELU, norm_layer=oc.transformer.LayerNorm,
            is_cross_attention=True, batch_first=True)

    def forward(self, text, image_map):
        image_tokens = flatten_map(self.image_proj(image_map))  # (B, H*W, W)
        return self.block(text, k_x=image_tokens, v_x=image_tokens)  # (B, K, W)


def gather_positions(x, positions):  # (B, L, D), (B, K) -> (B, K, D)
    return x.gather(1, positions[:, :, None].expand(-1, -1, x.shape[2]))


def flatten_map(feature_map):  # (B, C, H, W) -> (B, H*W, C), row-major grid order
    return feature_map.flatten(2).transpose(1, 2)


def soft_targets(logits, progress, r1, r2, delta):
    """(n, m) target rows: one-hot (p < r1), smoothed (p < r2) or importance-aware; no gradient."""
    n_rows, n_cols = logits.shape
    one_hot = torch.eye(n_rows, n_cols)
    if n_cols == 1:
        return one_hot
    logits = logits.detach().float()
    smooth = one_hot * (1.0 - delta) + (1.0 - one_hot) * (delta / (n_cols - 1))
    negatives = logits.masked_fill(one_hot.bool(), -float("inf"))
    importance = one_hot * (1.0 - delta) + delta * torch.softmax(negatives, dim=-1)
    progress = torch.tensor(progress, dtype=torch.float32)
    return torch.where(progress < r1, one_hot, torch.where(progress < r2, smooth, importance))


def soft_cross_entropy(logits, targets):
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


def instance_loss(image_features, text_features, logit_scale_exp, progress):
    """L_inst: symmetric soft InfoNCE, each direction's targets from its own rows."""
    logits_per_image = logit_scale_exp * image_features @ text_features.T  # (B, B)
    logits_per_text = logits_per_image.T
    return (soft_cross_entropy(logits_per_image, soft_targets(logits_per_image, progress, **SOFT_TARGETS))
            + soft_cross_entropy(logits_per_text, soft_targets(logits_per_text, progress, **SOFT_TARGETS))) / 2


def text_word_mask(tokens):
    """(B, L) bool, True at words: not pad, SOT, EOT or [MASK]."""
    return (tokens != PAD_ID) & (tokens != SOT_ID) & (tokens != EOT_ID) & (tokens != MASK_ID)


def token_cost(image_tokens, text_tokens):
    """(B, L1, L2) cost 1 - cosine (rsqrt(|x|^2 + 1e-12) normalisation, as mindclip's)."""
    def unit(x):
        return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + 1e-12)

    return 1.0 - torch.bmm(unit(image_tokens.float()), unit(text_tokens.float()).transpose(1, 2))


def token_alignment_loss(image_tokens, text_tokens, text_valid):
    """Mean matched cost per sample (host Hungarian matching), averaged over the samples that have a word."""
    cost = token_cost(image_tokens, text_tokens)  # (B, L1, L2)
    image_index, matched = (torch.from_numpy(a) for a in match_tokens(cost.detach().numpy(), text_valid.numpy()))
    matched_cost = cost.gather(1, image_index[:, None, :].long()).squeeze(1)  # (B, L2)
    pair_count = matched.sum(-1)  # (B,)
    sample_cost = (matched_cost * matched).sum(-1) / pair_count.clamp(min=1.0)
    has_word = (pair_count > 0).float()
    return (sample_cost * has_word).sum() / has_word.sum().clamp(min=1.0)


def mlm_loss(logits, labels):
    """Mean cross-entropy over labels != -100 (0 when there are none); logits (B, K, V), labels (B, K)."""
    valid = labels != IGNORE_LABEL
    log_probs = F.log_softmax(logits.float(), dim=-1)
    picked = log_probs.gather(2, torch.where(valid, labels, 0).unsqueeze(-1)).squeeze(-1)  # (B, K)
    return -(picked * valid).sum() / valid.sum().clamp(min=1)


def lightclip_loss(outputs, tokens, mlm_labels, progress):
    """(total, {part: value}) from LightCLIPPretrain's 7 outputs: 0.8 inst + 0.1 token + 0.1 (text + fused) / 2."""
    image_features, text_features, scale, image_tokens, text_tokens, text_logits, fuse_logits = outputs
    parts = dict(zip(PART_NAMES, (
        instance_loss(image_features, text_features, scale, progress),
        token_alignment_loss(image_tokens, text_tokens, text_word_mask(tokens)),
        mlm_loss(text_logits, mlm_labels), mlm_loss(fuse_logits, mlm_labels))))
    total = (LOSS_WEIGHTS["inst"] * parts["inst"] + LOSS_WEIGHTS["token"] * parts["token"]
             + LOSS_WEIGHTS["mlm"] * (parts["mlm_text"] + parts["mlm_fuse"]) / 2)
    return total, parts
