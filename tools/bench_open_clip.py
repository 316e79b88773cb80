"""Benchmark the open_clip (PyTorch) side of a side-by-side train-step comparison with mindclip.

    /work/refvenv/bin/python tools/bench_open_clip.py --method clip --batch 32 --image-size 224
    /work/refvenv/bin/python tools/bench_open_clip.py --method lightclip --batch-npz batch.npz --count-flops
    /work/refvenv/bin/python tools/bench_open_clip.py --method lightclip --text-length 32 --count-flops-only

Runs under a PyTorch interpreter (torch + open_clip_torch + timm + scipy), never imports MindSpore or
mindclip. The model is mindclip's preset `lightclip_mobilenetv2` rebuilt from open_clip parts: an
open_clip `CLIP` whose image tower is open_clip's `TimmModel` around timm's `mobilenetv2_100` (random
init, nothing downloaded), cut like mindcv's `features_only` model at the 320-channel last block (the
1280-channel conv_head/bn2 removed), average-pooled and projected 320 -> 512 without bias; the text
tower is open_clip's `TextTransformer` (8 layers, width 512, 8 heads, exact GELU, EOT pooling).

- `--method clip`: open_clip's training step: forward, `open_clip.loss.ClipLoss`, backward,
  `torch.optim.AdamW` (lr 1e-4, betas (0.9, 0.98), eps 1e-6, weight decay 0.1 on >= 2-D tensors),
  clamp of logit_scale to ln(100); eager fp32.
- `--method lightclip`: the same step with a PyTorch port of mindclip's LightCLIP objective
  (mindclip/models/lightclip.py, mindclip/train/objectives.py): 0.8 L_inst (importance-aware soft
  targets at progress 0.7) + 0.1 L_token (Hungarian matching on the host with SciPy) + 0.1 L_mlm
  (a second text pass on the masked captions, two fusion blocks, two 49409-way heads). The text
  token table has 49409 rows ([MASK] = 49408), as in mindclip.

The batch is fixed and synthetic: the recipe of `synthetic_batch` in tools/bench_train.py
(NumPy `default_rng(0)`, masks by the algorithm of mindclip.data.masking, re-implemented here), or
the arrays of `--batch-npz` (images, tokens[, mlm_tokens, mlm_positions, mlm_labels]) so that a
caller can hand both frameworks the identical batch (tools/bench_side_by_side.py does).

`--count-flops` counts the FLOPs of one train step (forward + backward, on a copy of the network,
outside the timed steps) with `torch.utils.flop_counter.FlopCounterMode` (matrix products,
convolutions and attention; element-wise work is not counted). `--count-flops-only` counts and exits.
The text position table has `--text-length` rows (open_clip's forward adds the whole table), so a
shorter length changes the parameter count a little and the FLOPs exactly as mindclip's bucketing.

`--pieces a,b,c` times parts of the step instead, by the definitions of tools/profile_step.py (the
MindSpore side), each as: one untimed call, one warm-up call, then `--steps` timed calls (median;
`--warmup` and `--count-flops` are not used). Forward + backward (`loss.backward()`, gradients set to
None before each call) unless said otherwise; fixed random inputs from NumPy `default_rng(1)`:
  image_tower      clip.visual(images), loss = (out * sin(arange)).sum()
  text_tower       clip.encode_text(tokens) (token table included), same weighted-sum loss
  token_table      the token lookup alone and its dense (vocab x 512) table gradient
  text_no_table    text_tower with the token table frozen (requires_grad off during the call)
  inst_loss        the method's instance loss on fixed (B, 512) features, logit scale 14.28
                   (--method clip: open_clip's ClipLoss, as this benchmark's step uses)
  token_loss       token-alignment loss (host Hungarian) on fixed token features      [lightclip]
  mlm_branch       masked-text pass, fusion, both MLM heads and losses; image stages fixed [lightclip]
  optimizer        AdamW.step() only, fixed random gradients (default_rng(2), x 1e-3) set once
  train_step       the whole step that the normal run times
One line per piece (`name  X.XXX s`), then a JSON line {framework, method, batch, image_size,
text_length, threads, pieces: {name: {step_s}}} (also appended to `--json`). LightCLIP-only names are
skipped for --method clip, as profile_step.py does.
"""
import argparse
import contextlib
import copy
import importlib.abc
import importlib.machinery
import importlib.util
import json
import math
import os
import sys
import time
import types

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

EMBED_DIM = 512
TEXT_WIDTH, TEXT_HEADS, TEXT_LAYERS = 512, 8, 8
VOCAB_SIZE = 49408
SOT_ID, EOT_ID, PAD_ID, MASK_ID = 49406, 49407, 0, 49408
IGNORE_LABEL = -100
TIMM_MODEL = "mobilenetv2_100"
# timm's mobilenetv2 `blocks` index that ends each stage tap, i.e. mindcv's out_indices (3, 6, 13, 17):
# mindcv's features are [stem, 17 inverted residuals, head]; timm groups the residuals 1-2-3-4-3-3-1
STAGE_BLOCKS = (1, 2, 4, 6)
STAGE_CHANNELS = (24, 32, 96, 320)
STAGE_STRIDES = (4, 8, 16, 32)
TEXT_STAGE_LAYERS = tuple(i * TEXT_LAYERS // 4 - 1 for i in range(1, 5))  # (1, 3, 5, 7): after layers 2,4,6,8
LOSS_WEIGHTS = {"inst": 0.8, "token": 0.1, "mlm": 0.1}
SOFT_TARGETS = {"r1": 0.33, "r2": 0.66, "delta": 0.2}
PROGRESS = 0.7  # bench_train.py's progress input: the importance-aware regime
LOGIT_SCALE_MAX = math.log(100.0)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", default="clip", choices=["clip", "lightclip"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--text-length", type=int, default=77, help="token positions (= the model's context length)")
    p.add_argument("--steps", type=int, default=5, help="timed steps after the warm-up ones")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after the first one")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    p.add_argument("--batch-npz", default=None, help="take the batch arrays from this .npz")
    p.add_argument("--count-flops", action="store_true", help="also count the FLOPs of one step")
    p.add_argument("--count-flops-only", action="store_true", help="count the FLOPs of one step, no timing")
    p.add_argument("--check-import", action="store_true", help="import open_clip, print versions, exit")
    p.add_argument("--json", default=None, help="append the result as a JSON line to this file")
    p.add_argument("--pieces", default=None,
                   help="time these parts of the step instead (comma-separated subset of: "
                        "image_tower, text_tower, token_table, text_no_table, inst_loss, token_loss, "
                        "mlm_branch, optimizer, train_step)")
    return p.parse_args(argv)


# --- importing open_clip and timm without a working torchvision -------------------------------------

class _PlaceholderMeta(type):
    """Metaclass of stub classes: any public attribute is another stub class (e.g. `InterpolationMode.BICUBIC`)."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _placeholder(f"{cls.__qualname__}.{name}")


def _placeholder(name):
    return _PlaceholderMeta(name, (), {"__module__": "torchvision_stub"})


class _StubModule(types.ModuleType):
    """A module whose every public attribute is a stub class (created on first access, then kept)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = _placeholder(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value


class _TorchvisionStubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers every import of `torchvision` and `torchvision.*` with a `_StubModule`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        if module.__name__ == "torchvision.ops.misc":  # isinstance() target in timm / open_clip freezing
            module.FrozenBatchNorm2d = type("FrozenBatchNorm2d", (nn.Module,), {})


def import_open_clip():
    """Return a namespace with open_clip's `model`, `transformer`, `loss` modules, `timm` and versions.

    Why the stub: open_clip's package `__init__` and timm (`timm.layers`, `timm.data`) import
    torchvision, and in /work/refvenv torchvision 0.28's compiled ops do not load against torch 2.13
    (`RuntimeError: operator torchvision::nms does not exist`). Nothing this benchmark runs uses
    torchvision: open_clip's `utils` and timm's norm layers only import `FrozenBatchNorm2d` (for
    freezing), and timm's `data` package imports `torchvision.transforms` for image pipelines built
    at import time but never called here. So when the real import fails, every `torchvision[.*]`
    import is answered by a stub module (any attribute is an inert placeholder class;
    `FrozenBatchNorm2d` is an `nn.Module` subclass), and open_clip's submodules are loaded without
    its package `__init__` (as `import_open_clip()` in ut/data/make_goldens.py does). With a working
    torchvision the real packages are used unchanged.
    """
    try:
        import open_clip
        import timm

        return types.SimpleNamespace(model=open_clip.model, transformer=open_clip.transformer,
                                     loss=open_clip.loss, timm=timm, version=open_clip.__version__,
                                     torchvision_stub=False)
    except RuntimeError:
        for name in [n for n in sys.modules if n.split(".")[0] in ("torchvision", "open_clip", "timm")]:
            del sys.modules[name]
    sys.meta_path.insert(0, _TorchvisionStubFinder())
    import timm

    package = types.ModuleType("open_clip")
    package.__path__ = list(importlib.util.find_spec("open_clip").submodule_search_locations)
    sys.modules["open_clip"] = package
    from open_clip import loss, model, timm_model, transformer, version

    if timm_model.timm is None:
        raise RuntimeError("open_clip.timm_model could not import timm")
    return types.SimpleNamespace(model=model, transformer=transformer, loss=loss, timm=timm,
                                 version=version.__version__, torchvision_stub=True)


# --- the model: open_clip CLIP with a truncated timm MobileNet-V2 ------------------------------------

def truncate_mobilenet(visual):
    """Cut open_clip's TimmModel(mobilenetv2_100) at the 320-channel block, like mindcv's features_only.

    timm's trunk ends blocks -> conv_head (320 -> 1280) -> bn2; mindclip's image tower pools the last
    block's 320 channels. Remove the head conv and its BN and rebuild the projection 320 -> E (no bias),
    so that `visual(images)` = proj(mean over the 7x7 grid of the 320-channel map), as mindclip's ImageTower.
    """
    trunk = visual.trunk
    trunk.conv_head, trunk.bn2 = nn.Identity(), nn.Identity()
    trunk.num_features = trunk.head_hidden_size = STAGE_CHANNELS[3]
    embed_dim = visual.head.proj.out_features
    visual.head.proj = nn.Linear(STAGE_CHANNELS[3], embed_dim, bias=False)
    return visual


def build_clip(oc, image_size, text_length, vocab_size):
    """open_clip CLIP with mindclip's `lightclip_mobilenetv2` architecture (random init)."""
    vision_cfg = dict(timm_model_name=TIMM_MODEL, timm_model_pretrained=False, timm_pool="avg",
                      timm_proj="linear", timm_proj_bias=False, image_size=image_size)
    text_cfg = dict(context_length=text_length, vocab_size=vocab_size, width=TEXT_WIDTH, heads=TEXT_HEADS,
                    layers=TEXT_LAYERS)
    clip = oc.model.CLIP(EMBED_DIM, vision_cfg, text_cfg, quick_gelu=False)  # nn.GELU: exact GELU
    truncate_mobilenet(clip.visual)
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
    """(B, 320, h, w) -> (B, E): the TimmModel's own pooling and projection (= visual(images))."""
    return visual.head(visual.trunk.forward_head(last_stage))  # avg pool + flatten, then proj


def text_embed(clip, tokens):
    """tokens (B, L) -> (token + position embeddings (B, L, W), causal mask (L, L))."""
    length = tokens.shape[1]
    x = clip.token_embedding(tokens) + clip.positional_embedding[:length]
    return x, clip.attn_mask[:length, :length]


def text_final(clip, tokens):
    """tokens (B, L) -> ln_final output (B, L, W) (CLIP.encode_text before pooling)."""
    x, mask = text_embed(clip, tokens)
    return clip.ln_final(clip.transformer(x, attn_mask=mask))


def text_stages(clip, tokens):
    """tokens (B, L) -> the outputs of layers 2, 4, 6, 8 (4 x (B, L, W)), before ln_final."""
    x, mask = text_embed(clip, tokens)
    _, stages = clip.transformer.forward_intermediates(x, attn_mask=mask, indices=list(TEXT_STAGE_LAYERS))
    return stages


def text_pool(global_pool, clip, final, tokens):
    """EOT (argmax id) pooling with open_clip's `text_global_pool`, then text_projection: (B, L, W) -> (B, E)."""
    return global_pool(final, tokens, "argmax") @ clip.text_projection


# --- LightCLIP's pre-training cells (mindclip/models/lightclip.py) ------------------------------------

def gather_positions(x, positions):
    """x (B, L, D), positions (B, K) -> (B, K, D)."""
    return x.gather(1, positions[:, :, None].expand(-1, -1, x.shape[2]))


def flatten_map(feature_map):
    """(B, C, H, W) -> (B, H*W, C), row-major grid order."""
    return feature_map.flatten(2).transpose(1, 2)


class MLMHead(nn.Module):
    """LayerNorm then Linear(width -> vocab_size)."""

    def __init__(self, oc, width, vocab_size):
        super().__init__()
        self.ln = oc.transformer.LayerNorm(width)
        self.fc = nn.Linear(width, vocab_size)

    def forward(self, x):
        return self.fc(self.ln(x))  # (B, K, V)


class ImageTextFusion(nn.Module):
    """1x1 conv (C -> W) of an image stage, flatten, open_clip's cross-attention block (queries = text).

    open_clip's `ResidualAttentionBlock(is_cross_attention=True)` is mindclip's CrossAttentionBlock:
    x + attn(ln_1(x), ln_1_kv(ctx)), then x + mlp(ln_2(x)), packed in-projection, GELU MLP (4x).
    """

    def __init__(self, oc, image_channels, width, heads):
        super().__init__()
        self.image_proj = nn.Conv2d(image_channels, width, 1, bias=True)
        self.block = oc.transformer.ResidualAttentionBlock(
            width, heads, mlp_ratio=4.0, act_layer=nn.GELU, norm_layer=oc.transformer.LayerNorm,
            is_cross_attention=True, batch_first=True)

    def forward(self, text, image_map):
        image_tokens = flatten_map(self.image_proj(image_map))  # (B, H*W, W)
        return self.block(text, k_x=image_tokens, v_x=image_tokens)  # (B, K, W)


class LightCLIPPretrain(nn.Module):
    """An open_clip CLIP plus LightCLIP's heads; mirrors mindclip's LightCLIPPretrain.construct.

    forward(images (B,3,H,W), tokens (B,L), mlm_tokens (B,L), mlm_positions (B,K)) ->
        image_features (B,E) normalised, text_features (B,E) normalised, logit_scale_exp (),
        image_tokens (B, h*w, E), text_tokens (B, L, E), mlm_text_logits (B,K,V), mlm_fuse_logits (B,K,V)
    """

    def __init__(self, oc, clip, vocab_size):
        super().__init__()
        self.global_pool = oc.transformer.text_global_pool  # a function: the net stays deep-copyable
        self.clip = clip
        self.image_token_proj = nn.Linear(STAGE_CHANNELS[3], EMBED_DIM, bias=False)
        self.fusion2 = ImageTextFusion(oc, STAGE_CHANNELS[1], TEXT_WIDTH, TEXT_HEADS)
        self.fusion3 = ImageTextFusion(oc, STAGE_CHANNELS[2], TEXT_WIDTH, TEXT_HEADS)
        self.mlm_text_head = MLMHead(oc, TEXT_WIDTH, vocab_size)
        self.mlm_fuse_head = MLMHead(oc, 2 * TEXT_WIDTH, vocab_size)

    def forward(self, images, tokens, mlm_tokens, mlm_positions):
        clip = self.clip
        stages = image_stages(clip.visual, images)  # 4 x (B, C_i, H_i, W_i)
        image_features = F.normalize(image_pool(clip.visual, stages[3]), dim=-1)  # (B, E)
        final = text_final(clip, tokens)  # (B, L, W)
        text_features = F.normalize(text_pool(self.global_pool, clip, final, tokens), dim=-1)  # (B, E)
        image_tokens = self.image_token_proj(flatten_map(stages[3]))  # (B, h*w, E)
        text_tokens = final @ clip.text_projection  # (B, L, E)
        _, t2, t3, t4 = text_stages(clip, mlm_tokens)  # 4 x (B, L, W)
        text_logits = self.mlm_text_head(gather_positions(t4, mlm_positions))  # (B, K, V)
        # cross-attention treats each query on its own: fusing only the K gathered rows is exact
        fused2 = self.fusion2(gather_positions(t2, mlm_positions), stages[1])  # (B, K, W)
        fused3 = self.fusion3(gather_positions(t3, mlm_positions), stages[2])  # (B, K, W)
        fuse_logits = self.mlm_fuse_head(torch.cat((fused2, fused3), dim=-1))  # (B, K, V)
        return (image_features, text_features, clip.logit_scale.exp(), image_tokens, text_tokens,
                text_logits, fuse_logits)


# --- LightCLIP's losses (mindclip/losses) ----------------------------------------------------------

def soft_targets(logits, progress, r1, r2, delta):
    """(n, m) target rows: one-hot (p < r1), smoothed (p < r2) or importance-aware; no gradient."""
    n_rows, n_cols = logits.shape
    one_hot = torch.eye(n_rows, n_cols, dtype=torch.float32)
    if n_cols == 1:
        return one_hot
    logits = logits.detach().float()
    smooth = one_hot * (1.0 - delta) + (1.0 - one_hot) * (delta / (n_cols - 1))
    negative_logits = logits.masked_fill(one_hot.bool(), -float("inf"))
    importance = one_hot * (1.0 - delta) + delta * torch.softmax(negative_logits, dim=-1)
    progress = torch.tensor(progress, dtype=torch.float32)
    targets = torch.where(progress < r2, smooth, importance)  # all regimes computed, as mindclip's ops.select
    return torch.where(progress < r1, one_hot, targets)


def soft_cross_entropy(logits, targets):
    """Mean over rows of -sum_j targets_ij log_softmax(logits)_ij."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


def instance_loss(image_features, text_features, logit_scale_exp, progress):
    """LightCLIP's L_inst on one process: symmetric soft InfoNCE, each direction's targets from its rows."""
    logits_per_image = logit_scale_exp * image_features @ text_features.T  # (B, B)
    logits_per_text = logits_per_image.T
    image_targets = soft_targets(logits_per_image, progress, **SOFT_TARGETS)
    text_targets = soft_targets(logits_per_text, progress, **SOFT_TARGETS)
    return (soft_cross_entropy(logits_per_image, image_targets)
            + soft_cross_entropy(logits_per_text, text_targets)) / 2


def text_word_mask(tokens):
    """(B, L) bool, True at words: not pad, SOT, EOT or [MASK]."""
    return (tokens != PAD_ID) & (tokens != SOT_ID) & (tokens != EOT_ID) & (tokens != MASK_ID)


def _unit(x, eps=1e-12):
    """x * rsqrt(||x||^2 + eps) over the last axis (mindclip's token_alignment._unit)."""
    return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + eps)


def token_cost(image_tokens, text_tokens):
    """(B, L1, L2) cost 1 - cosine(image token i, text token j)."""
    return 1.0 - torch.bmm(_unit(image_tokens.float()), _unit(text_tokens.float()).transpose(1, 2))


def match_tokens(cost, text_valid):
    """Host Hungarian matching per sample (mindclip/ops/hungarian.py `match_tokens`).

    cost (B, L1, L2) float32, text_valid (B, L2) -> image_index (B, L2) int32 (0 where unmatched),
    matched (B, L2) float32.
    """
    from scipy.optimize import linear_sum_assignment

    batch, _, text_len = cost.shape
    image_index = np.zeros((batch, text_len), dtype=np.int32)
    matched = np.zeros((batch, text_len), dtype=np.float32)
    for b in range(batch):
        columns = np.flatnonzero(text_valid[b])
        if columns.size == 0:
            continue
        rows, picked = linear_sum_assignment(cost[b][:, columns])  # min(L1, n) pairs
        image_index[b, columns[picked]] = rows
        matched[b, columns[picked]] = 1.0
    return image_index, matched


def token_alignment_loss(image_tokens, text_tokens, text_valid):
    """Mean matched cost per sample, averaged over samples with at least one word."""
    cost = token_cost(image_tokens, text_tokens)  # (B, L1, L2)
    image_index, matched = match_tokens(cost.detach().numpy(), text_valid.numpy())
    image_index = torch.from_numpy(image_index).long()[:, None, :]  # (B, 1, L2)
    matched = torch.from_numpy(matched)  # (B, L2)
    matched_cost = cost.gather(1, image_index).squeeze(1)  # (B, L2)
    pair_count = matched.sum(-1)  # (B,)
    sample_cost = (matched_cost * matched).sum(-1) / pair_count.clamp(min=1.0)
    has_word = (pair_count > 0).float()
    return (sample_cost * has_word).sum() / has_word.sum().clamp(min=1.0)


def mlm_loss(logits, labels):
    """Mean cross-entropy over labels != -100 (0 when there are none); logits (B, K, V), labels (B, K)."""
    log_probs = F.log_softmax(logits.float(), dim=-1)
    valid = labels != IGNORE_LABEL
    safe_labels = torch.where(valid, labels, torch.zeros_like(labels))
    picked = log_probs.gather(2, safe_labels.unsqueeze(-1)).squeeze(-1)  # (B, K)
    weights = valid.float()
    return -(picked * weights).sum() / weights.sum().clamp(min=1.0)


# --- objectives: (net, batch) -> (total, parts) ------------------------------------------------------

def clip_objective(oc):
    """open_clip's training loss: model(images, tokens) -> ClipLoss."""
    loss = oc.loss.ClipLoss()

    def objective(net, batch):
        image_features, text_features, logit_scale_exp = net(batch["images"], batch["tokens"])
        inst = loss(image_features, text_features, logit_scale_exp)
        return inst, {"inst": inst}

    return objective


def lightclip_objective(net, batch):
    """mindclip's LightClipObjective: 0.8 inst + 0.1 token + 0.1 (mlm_text + mlm_fuse) / 2."""
    (image_features, text_features, logit_scale_exp, image_tokens, text_tokens,
     mlm_text_logits, mlm_fuse_logits) = net(batch["images"], batch["tokens"], batch["mlm_tokens"],
                                             batch["mlm_positions"])
    inst = instance_loss(image_features, text_features, logit_scale_exp, PROGRESS)
    token = token_alignment_loss(image_tokens, text_tokens, text_word_mask(batch["tokens"]))
    mlm_text = mlm_loss(mlm_text_logits, batch["mlm_labels"])
    mlm_fuse = mlm_loss(mlm_fuse_logits, batch["mlm_labels"])
    total = (LOSS_WEIGHTS["inst"] * inst + LOSS_WEIGHTS["token"] * token
             + LOSS_WEIGHTS["mlm"] * (mlm_text + mlm_fuse) / 2)
    return total, {"inst": inst, "token": token, "mlm_text": mlm_text, "mlm_fuse": mlm_fuse}


def build_network(oc, method, image_size, text_length):
    """(net, clip, objective): the trained network (CLIP, or CLIP + LightCLIP heads) and its loss."""
    torch.manual_seed(0)
    vocab_size = VOCAB_SIZE + 1 if method == "lightclip" else VOCAB_SIZE
    clip = build_clip(oc, image_size, text_length, vocab_size)
    if method == "clip":
        return clip, clip, clip_objective(oc)
    return LightCLIPPretrain(oc, clip, vocab_size), clip, lightclip_objective


# --- the synthetic batch (tools/bench_train.py `synthetic_batch`, mindclip.data.masking) ---------------

def num_masked(n_words, mask_prob=0.15):
    if n_words <= 0:
        return 0
    return min(n_words, max(1, math.floor(mask_prob * n_words + 0.5)))


def mlm_max_predictions(context_length, mask_prob=0.15):
    return max(1, num_masked(context_length - 2, mask_prob))


def mask_tokens(tokens, rng, mask_prob=0.15):
    """(N, L) -> (masked, labels): mindclip.data.masking.mask_tokens, same draws from `rng`."""
    masked, labels = tokens.copy(), np.full_like(tokens, IGNORE_LABEL)
    for row, ids in enumerate(tokens):
        words = np.flatnonzero((ids != PAD_ID) & (ids != SOT_ID) & (ids != EOT_ID))
        chosen = rng.choice(words, size=num_masked(len(words), mask_prob), replace=False)
        if chosen.size == 0:
            continue
        labels[row, chosen] = ids[chosen]
        action = rng.random(chosen.size)
        random_ids = rng.integers(1, 49405 + 1, size=chosen.size)
        masked[row, chosen] = np.where(action < 0.8, MASK_ID, np.where(action < 0.9, random_ids, ids[chosen]))
    return masked, labels


def compact_mlm_labels(labels, k):
    """(N, L) labels -> (positions (N, K), labels_k (N, K)): mindclip.data.masking.compact_mlm_labels."""
    positions = np.zeros((labels.shape[0], k), dtype=np.int32)
    labels_k = np.full((labels.shape[0], k), IGNORE_LABEL, dtype=np.int32)
    for row, ids in enumerate(labels):
        chosen = np.flatnonzero(ids != IGNORE_LABEL)
        if chosen.size > k:
            raise ValueError(f"row {row} has {chosen.size} masked positions, more than K={k}")
        positions[row, :chosen.size] = chosen
        labels_k[row, :chosen.size] = ids[chosen]
    return positions, labels_k


def synthetic_batch(method, batch, image_size, length, rng):
    """Fixed random arrays by tools/bench_train.py's recipe: {name: np.ndarray}."""
    images = rng.standard_normal((batch, 3, image_size, image_size)).astype(np.float32)
    tokens = np.zeros((batch, length), np.int32)
    for i in range(batch):
        n = int(rng.integers(5, length - 1))
        tokens[i, 0] = SOT_ID
        tokens[i, 1:n] = rng.integers(1, 49405, n - 1)
        tokens[i, n] = EOT_ID
    arrays = {"images": images, "tokens": tokens}
    if method == "lightclip":
        masked, labels = mask_tokens(tokens, rng)
        positions, labels_k = compact_mlm_labels(labels, mlm_max_predictions(length))
        arrays.update(mlm_tokens=masked, mlm_positions=positions, mlm_labels=labels_k)
    return arrays


BATCH_COLUMNS = {"clip": ("images", "tokens"),
                 "lightclip": ("images", "tokens", "mlm_tokens", "mlm_positions", "mlm_labels")}


def load_batch(args):
    """The batch as torch tensors (images float32, ids int64), from --batch-npz or the recipe."""
    if args.batch_npz:
        with np.load(args.batch_npz) as data:
            arrays = {name: data[name] for name in BATCH_COLUMNS[args.method]}
        expected = (args.batch, 3, args.image_size, args.image_size)
        if arrays["images"].shape != expected or arrays["tokens"].shape != (args.batch, args.text_length):
            raise ValueError(f"{args.batch_npz}: images {arrays['images'].shape}, tokens {arrays['tokens'].shape} "
                             f"do not match --batch/--image-size/--text-length {expected}, {args.text_length}")
    else:
        arrays = synthetic_batch(args.method, args.batch, args.image_size, args.text_length,
                                 np.random.default_rng(0))
    dtypes = {name: torch.float32 if name == "images" else torch.int64 for name in arrays}
    return {name: torch.from_numpy(np.ascontiguousarray(value)).to(dtypes[name]) for name, value in arrays.items()}


# --- training step, FLOPs, checks --------------------------------------------------------------------

def build_optimizer(net):
    """open_clip's AdamW: weight decay 0.1 on >= 2-D tensors only (not biases, norms, logit_scale)."""
    params = [p for p in net.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.98), eps=1e-6)


def train_step(net, clip, objective, optimizer, batch):
    """zero_grad, forward, loss, backward, AdamW step, clamp logit_scale (open_clip's train loop)."""
    optimizer.zero_grad(set_to_none=True)
    total, parts = objective(net, batch)
    total.backward()
    optimizer.step()
    with torch.no_grad():
        clip.logit_scale.clamp_(0, LOGIT_SCALE_MAX)
    return total.detach(), {name: value.detach() for name, value in parts.items()}


def _grouped_conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation,
                                transposed, _output_padding, _groups, output_mask, out_shape=None, **kwargs):
    """convolution_backward: grad_input and grad_weight each cost the forward's FLOPs (groups included).

    torch's own formula counts grad_weight as a convolution of the input with grad_out that ignores
    `groups`, which overcounts a depthwise convolution by its channel count (it put MobileNet-V2's
    convolution backward at ~10x its true count); `w_shape[1]` is C_in / groups, so the forward count
    is right for any groups.
    """
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed=transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def _flop_formulas():
    """FlopCounterMode `custom_mapping`: fixes for the ops this step runs on CPU.

    - `convolution_backward`: groups-aware (see `_grouped_conv_backward_flop`).
    - The CPU flash-attention kernels that nn.MultiheadAttention reaches on CPU have no formula (they
      would count 0); count them as torch counts the other SDPA kernels (the full L x S score matrix,
      causal or not, as mindclip computes it).
    """
    from torch.utils import flop_counter

    def raw(formula):  # flop_counter's module-level formulas already take tensors (shape-wrapped)
        def counted(*args, **kwargs):
            return formula(*args, **kwargs)

        counted._get_raw = True
        return counted

    aten = torch.ops.aten
    mapping = {aten.convolution_backward: _grouped_conv_backward_flop}
    for name, formula in (("_scaled_dot_product_flash_attention_for_cpu", flop_counter.sdpa_flop),
                          ("_scaled_dot_product_flash_attention_for_cpu_backward",
                           flop_counter.sdpa_backward_flop)):
        if hasattr(aten, name):
            mapping[getattr(aten, name)] = raw(formula)
    return mapping


def count_step_flops(net, objective, batch):
    """FLOPs of one forward + backward of `objective` on a copy of `net` (the timed net is untouched)."""
    from torch.utils.flop_counter import FlopCounterMode

    probe = copy.deepcopy(net)
    with FlopCounterMode(display=False, custom_mapping=_flop_formulas()) as counter:
        total, _ = objective(probe, batch)
        total.backward()
    flops = counter.get_total_flops()
    del probe
    return int(flops)


def check_image_stages(visual, image_size):
    """Run the trunk on a 1-image probe (eval mode, no grad): channels (24, 32, 96, 320), strides 4..32."""
    was_training = visual.training
    visual.eval()
    with torch.no_grad():
        probe = torch.zeros(1, 3, image_size, image_size)
        stages = image_stages(visual, probe)
        pooled_ok = torch.allclose(image_pool(visual, stages[3]), visual(probe), atol=1e-6)
    visual.train(was_training)
    channels = tuple(s.shape[1] for s in stages)
    strides = tuple(image_size // s.shape[2] for s in stages)
    if channels != STAGE_CHANNELS or strides != STAGE_STRIDES or not pooled_ok:
        raise RuntimeError(f"image stages: channels {channels}, strides {strides}, pool == visual(): {pooled_ok}; "
                           f"expected {STAGE_CHANNELS}, {STAGE_STRIDES}, True")
    return channels, strides


def count_parameters(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def time_steps(net, clip, objective, optimizer, batch, steps, warmup):
    """(first step s, timed step times, last (total, parts))."""
    t0 = time.perf_counter()
    out = train_step(net, clip, objective, optimizer, batch)
    first = time.perf_counter() - t0
    for _ in range(warmup):
        out = train_step(net, clip, objective, optimizer, batch)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        out = train_step(net, clip, objective, optimizer, batch)
        times.append(time.perf_counter() - t0)
    return first, np.array(times), out


# --- per-piece timing (--pieces): tools/profile_step.py's pieces on the PyTorch model ---------------

PIECES = ("image_tower", "text_tower", "token_table", "text_no_table", "inst_loss", "token_loss",
          "mlm_branch", "optimizer", "train_step")
LIGHTCLIP_ONLY = ("token_loss", "mlm_branch")
FIXED_LOGIT_SCALE = 14.28  # profile_step.py's inst_loss input (about exp(ln(1/0.07)))


def selected_pieces(spec, method):
    """`--pieces` text -> the names to time, in the given order; lightclip-only names dropped for clip."""
    wanted = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(PIECES))
    if unknown:
        raise SystemExit(f"--pieces: unknown {unknown}; choose from {PIECES}")
    if method == "clip":
        wanted = [name for name in wanted if name not in LIGHTCLIP_ONLY]
    return wanted


def weighted_sum(out):
    """(out * sin(arange(out.numel())).reshape(out.shape)).sum(): a scalar whose gradient reaches every output."""
    weights = torch.sin(torch.arange(out.numel(), dtype=out.dtype)).reshape(out.shape)
    return (out * weights).sum()


@contextlib.contextmanager
def frozen(param):
    """Turn off `param.requires_grad` inside the block (autograd then skips its gradient), restore after."""
    was = param.requires_grad
    param.requires_grad_(False)
    try:
        yield param
    finally:
        param.requires_grad_(was)


def backward_call(loss_fn, leaves):
    """A call: set the gradients of `leaves` to None, then loss_fn().backward()."""
    def call():
        for leaf in leaves:
            leaf.grad = None  # = zero_grad(set_to_none=True)
        loss_fn().backward()

    return call


def fixed_inputs(method, batch_size, image_size, text_length, embed_dim=EMBED_DIM):
    """profile_step.py's fixed random inputs, drawn in its order from default_rng(1), as leaf tensors.

    features: 2 x (B, E) for inst_loss; lightclip adds image_tokens (B, (size/32)^2, E) and
    text_tokens (B, L, E) for token_loss. All require grad (the losses' inputs are differentiated).
    """
    rng = np.random.default_rng(1)

    def draw(*shape):
        return torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).requires_grad_(True)

    inputs = {"features": [draw(batch_size, embed_dim) for _ in range(2)]}
    if method == "lightclip":
        grid = (image_size // 32) ** 2
        inputs["image_tokens"] = draw(batch_size, grid, embed_dim)
        inputs["text_tokens"] = draw(batch_size, text_length, embed_dim)
    return inputs


def inst_loss_fn(oc, method):
    """(image_features, text_features, logit_scale_exp) -> the instance loss this benchmark's step uses."""
    if method == "clip":
        return oc.loss.ClipLoss()
    return lambda a, b, scale: instance_loss(a, b, scale, PROGRESS)


def mlm_outputs(pretrain, stages, mlm_tokens, mlm_positions):
    """The MLM half of LightCLIPPretrain.forward (mindclip's `_mlm_outputs`): -> (text_logits, fuse_logits)."""
    _, t2, t3, t4 = text_stages(pretrain.clip, mlm_tokens)  # 4 x (B, L, W)
    text_logits = pretrain.mlm_text_head(gather_positions(t4, mlm_positions))  # (B, K, V)
    fused2 = pretrain.fusion2(gather_positions(t2, mlm_positions), stages[1])  # (B, K, W)
    fused3 = pretrain.fusion3(gather_positions(t3, mlm_positions), stages[2])  # (B, K, W)
    fuse_logits = pretrain.mlm_fuse_head(torch.cat((fused2, fused3), dim=-1))  # (B, K, V)
    return text_logits, fuse_logits


def tower_pieces(net, clip, batch):
    """name -> setup() -> call, for image_tower, text_tower, token_table, text_no_table."""
    images, tokens = batch["images"], batch["tokens"]
    params = list(net.parameters())
    table = clip.token_embedding.weight

    def text_no_table():
        with frozen(table):
            return weighted_sum(clip.encode_text(tokens))

    return {
        "image_tower": lambda: backward_call(lambda: weighted_sum(clip.visual(images)), params),
        "text_tower": lambda: backward_call(lambda: weighted_sum(clip.encode_text(tokens)), params),
        "token_table": lambda: backward_call(lambda: weighted_sum(clip.token_embedding(tokens)), params),
        "text_no_table": lambda: backward_call(text_no_table, params),
    }


def loss_pieces(oc, method, inputs, tokens):
    """name -> setup() -> call, for inst_loss and (lightclip) token_loss: gradients to the fixed inputs."""
    inst = inst_loss_fn(oc, method)
    scale = torch.tensor(FIXED_LOGIT_SCALE)
    a, b = inputs["features"]
    pieces = {"inst_loss": lambda: backward_call(
        lambda: inst(F.normalize(a, dim=-1), F.normalize(b, dim=-1), scale), (a, b))}
    if method == "lightclip":
        image_tokens, text_tokens = inputs["image_tokens"], inputs["text_tokens"]
        pieces["token_loss"] = lambda: backward_call(
            lambda: token_alignment_loss(image_tokens, text_tokens, text_word_mask(tokens)),
            (image_tokens, text_tokens))
    return pieces


def mlm_branch_setup(net, clip, batch):
    """setup() -> call for mlm_branch: the image stages are computed once (no grad) and held fixed."""
    with torch.no_grad():
        stages = [stage.detach() for stage in image_stages(clip.visual, batch["images"])]
    labels = batch["mlm_labels"]

    def loss():
        text_logits, fuse_logits = mlm_outputs(net, stages, batch["mlm_tokens"], batch["mlm_positions"])
        return (mlm_loss(text_logits, labels) + mlm_loss(fuse_logits, labels)) / 2

    return backward_call(loss, list(net.parameters()))


def optimizer_setup(optimizer):
    """setup() -> call for optimizer: fixed random gradients (x 1e-3) assigned to .grad once, then step()."""
    rng = np.random.default_rng(2)
    for group in optimizer.param_groups:
        for p in group["params"]:
            grad = np.float32(1e-3) * rng.standard_normal(tuple(p.shape), dtype=np.float32)
            p.grad = torch.as_tensor(grad, dtype=p.dtype).reshape(p.shape)  # 0-d draws are NumPy scalars
    return optimizer.step


def piece_setups(oc, method, net, clip, objective, optimizer, batch, image_size, text_length):
    """name -> setup(): each setup prepares its piece (right before it is timed) and returns its call."""
    inputs = fixed_inputs(method, batch["images"].shape[0], image_size, text_length)
    setups = {**tower_pieces(net, clip, batch), **loss_pieces(oc, method, inputs, batch["tokens"])}
    if method == "lightclip":
        setups["mlm_branch"] = lambda: mlm_branch_setup(net, clip, batch)
    setups["optimizer"] = lambda: optimizer_setup(optimizer)
    setups["train_step"] = lambda: (lambda: train_step(net, clip, objective, optimizer, batch))
    return setups


def time_piece(call, steps):
    """(first call s, median of `steps` calls after one untimed warm-up call)."""
    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    call()  # warm-up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return first, float(np.median(times))


def run_pieces(args, oc, net, clip, objective, batch, wanted):
    """Time each wanted piece, print `name  X.XXX s` lines and the JSON line; returns the result dict."""
    optimizer = build_optimizer(net)
    setups = piece_setups(oc, args.method, net, clip, objective, optimizer, batch, args.image_size,
                          args.text_length)
    rows = {}
    for name in wanted:
        _, median = time_piece(setups[name](), args.steps)
        rows[name] = {"step_s": round(median, 3)}
        print(f"{name:14s} {median:8.3f} s", flush=True)
    result = {"framework": "open_clip", "method": args.method, "batch": args.batch,
              "image_size": args.image_size, "text_length": args.text_length,
              "threads": torch.get_num_threads(), "pieces": rows}
    emit(result, args.json)
    return result


def versions(oc):
    return {"torch": torch.__version__, "open_clip": oc.version, "timm": oc.timm.__version__,
            "torchvision_stub": oc.torchvision_stub}


def emit(result, path):
    print(json.dumps(result))
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")


def main(argv=None):
    args = parse_args(argv)
    if args.steps < 1 and not (args.count_flops_only or args.check_import):
        raise SystemExit("--steps must be >= 1")
    wanted = selected_pieces(args.pieces, args.method) if args.pieces else None
    torch.set_num_threads(args.threads)
    oc = import_open_clip()
    if args.check_import:
        emit(versions(oc), None)
        return versions(oc)
    net, clip, objective = build_network(oc, args.method, args.image_size, args.text_length)
    net.train()
    channels, strides = check_image_stages(clip.visual, args.image_size)
    batch = load_batch(args)
    if wanted is not None:
        return run_pieces(args, oc, net, clip, objective, batch, wanted)
    result = {
        "model": "lightclip_mobilenetv2 (open_clip CLIP, timm mobilenetv2_100 cut at 320 ch)",
        "framework": "open_clip", "method": args.method, "batch": args.batch, "image_size": args.image_size,
        "text_length": args.text_length, "threads": torch.get_num_threads(),
        "params": count_parameters(net), "params_clip": count_parameters(clip),
        "stage_channels": list(channels), "stage_strides": list(strides),
        "batch_source": args.batch_npz or "recipe (default_rng(0))", **versions(oc),
    }
    if args.count_flops or args.count_flops_only:
        result["flops_per_step"] = count_step_flops(net, objective, batch)
    if args.count_flops_only:
        emit(result, args.json)
        return result
    optimizer = build_optimizer(net)
    first, times, (total, parts) = time_steps(net, clip, objective, optimizer, batch, args.steps, args.warmup)
    median = float(np.median(times))
    result.update({
        "first_step_s": round(first, 2), "step_s_median": round(median, 3),
        "step_s_min": round(float(times.min()), 3),
        "images_per_s": round(args.batch / median, 2), "loss": round(float(total), 4),
        "parts": {name: round(float(value), 4) for name, value in parts.items()},
    })
    if "flops_per_step" in result:
        result["gflops_per_s"] = round(result["flops_per_step"] / median / 1e9, 2)
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
