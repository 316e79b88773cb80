"""Make `lightclip_torch_golden.npz`: the PyTorch reference's LightCLIP loss parts on a tiny network.

Run once, only with a PyTorch interpreter (torch, open_clip_torch, timm, pillow, scipy), from the
repository root:

    /work/refvenv/bin/python ut/data/make_lightclip_golden.py

It builds the benchmark's own PyTorch network (mindclip/bench/torch_model.py `build_network`,
with the LightCLIP port of mindclip/bench/lightclip_torch.py) at a tiny size, runs its forward on a
hand-made batch and records the loss parts at progress values in every soft-target regime, the
weights, the image stages (the timm trunk's outputs: mindclip's test feeds them in place of its
mindcv backbone) and the shapes of every trainable parameter. ut/test_torch_reference_parity.py
reads only the .npz (see ut/data/README.md for the keys).
"""
import hashlib
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # a generator, not a tool: mindclip from this checkout

import torch  # noqa: E402

from mindclip.bench import lightclip_torch as lc  # noqa: E402
from mindclip.bench import torch_model as ref  # noqa: E402
from mindclip.bench.torchvision_stub import import_open_clip  # noqa: E402
from mindclip.data.masking import compact_mlm_labels, mask_tokens, mlm_max_predictions  # noqa: E402
from mindclip.tokenizer import EOT_ID, SOT_ID, VOCAB_SIZE  # noqa: E402

OUT = os.path.join(ROOT, "ut", "data", "lightclip_torch_golden.npz")
TINY = ref.Arch(embed_dim=8, width=8, heads=2, layers=4, vocab_size=VOCAB_SIZE, context_length=12, image_size=64)
WORDS_PER_ROW = (2, 8, 0, 5)  # more and fewer words than the 2x2 = 4 image tokens; a caption without words
PROGRESSES = (0.0, 0.2, 0.33, 0.5, 0.66, 0.9)  # one-hot, smoothed, importance-aware, and both thresholds
SPARSE = ("clip.token_embedding.weight", "mlm_text_head.fc.weight", "mlm_text_head.fc.bias",
          "mlm_fuse_head.fc.weight", "mlm_fuse_head.fc.bias")  # 49409 rows: only `kept` rows are non-zero
EXTRA_HEAD_ROWS = 48  # non-zero MLM head rows besides the batch's ids
REFERENCE_SOURCES = ("mindclip/bench/torch_model.py", "mindclip/bench/lightclip_torch.py")  # the test checks the hash


def reference_sha256():
    digest = hashlib.sha256()
    for path in REFERENCE_SOURCES:
        with open(os.path.join(ROOT, path), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def make_batch(rng):
    """Token rows by WORDS_PER_ROW, MLM columns by mindclip's masking (NumPy), random images."""
    tokens = np.zeros((len(WORDS_PER_ROW), TINY.context_length), np.int32)
    for row, words in enumerate(WORDS_PER_ROW):
        tokens[row, 0], tokens[row, words + 1] = SOT_ID, EOT_ID
        tokens[row, 1:words + 1] = rng.integers(1, SOT_ID - 1, words)
    masked, labels = mask_tokens(tokens, rng)
    positions, labels_k = compact_mlm_labels(labels, mlm_max_predictions(TINY.context_length))
    images = rng.standard_normal((len(tokens), 3, TINY.image_size, TINY.image_size)).astype(np.float32)
    return {"image": images, "tokens": tokens, "mlm_tokens": masked, "mlm_positions": positions,
            "mlm_labels": labels_k}


def to_bfloat16(x):
    """Rounded to the nearest bfloat16 value, kept float32: the file compresses to half."""
    return x.bfloat16().float()


def randomize_(net, kept, gen):
    """Non-default norms, biases and logit scale (every mapping matters); big tables zero outside `kept`;
    every weight rounded to bfloat16, and so is each image stage the trunk outputs (forward hooks)."""
    for index in ref.STAGE_BLOCKS:
        net.clip.visual.trunk.blocks[index].register_forward_hook(lambda module, inputs, out: to_bfloat16(out))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name in SPARSE:
                keep = torch.zeros(p.shape[0], dtype=torch.bool)
                keep[kept] = True
                p.mul_(keep.reshape(-1, *[1] * (p.ndim - 1)))
                if p.ndim == 1:
                    p.copy_(0.5 * torch.randn(p.shape, generator=gen) * keep)
            elif name.endswith("ln.weight") or ".ln_" in name and name.endswith(".weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            p.copy_(to_bfloat16(p))
        net.clip.logit_scale.fill_(2.3)


def parameter_groups(net):
    """[[group, shape], ...] of every trainable parameter, sorted; groups as mindclip's test names them."""
    def group(name):
        name = name[len("clip."):] if name.startswith("clip.") else name
        if name.startswith("visual.trunk."):
            return "image.backbone"
        if name.startswith("visual."):
            return "image.proj"
        if name.split(".")[0] in ("token_embedding", "positional_embedding", "transformer", "ln_final",
                                  "text_projection"):
            return "text"
        return name.split(".")[0]  # logit_scale, image_token_proj, fusion2, fusion3, mlm_text_head, mlm_fuse_head

    return sorted([group(n), list(p.shape)] for n, p in net.named_parameters() if p.requires_grad)


def weights(net):
    """Every weight but the trunk's, packed: (one float32 array, {torch name: [offset, shape, rows]}).

    A SPARSE weight keeps only its non-zero `rows` (the others are zero); `rows` is None otherwise.
    """
    values, index, offset = [], {}, 0
    for name, p in net.named_parameters():
        if name.startswith("clip.visual.trunk."):
            continue
        value, rows = p.detach().numpy().astype(np.float32), None
        if name in SPARSE:
            rows = np.flatnonzero(np.abs(value.reshape(value.shape[0], -1)).sum(-1))
            value, rows = value[rows], rows.tolist()
        index[name] = [offset, list(p.shape), rows]
        values.append(value.ravel())
        offset += value.size
    return np.concatenate(values), index


def bench_facts(oc):
    """The benchmark network's dims and trainable parameter counts (full size, 77 positions)."""
    facts = {"arch": ref.BENCH_ARCH._asdict(), "timm_trunk": ref.TIMM_TRUNK, "stage_channels": ref.STAGE_CHANNELS}
    for method in ("clip", "lightclip"):
        net = ref.build_network(oc, method)[0]
        facts[f"params_{method}"] = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return facts


def run_reference(net, objective, arrays):
    """Image stages and (total, parts) at each progress, from the reference's own forward and loss."""
    batch = {k: torch.from_numpy(v).to(torch.float32 if k == "image" else torch.int64) for k, v in arrays.items()}
    out = {}
    with torch.no_grad():
        for i, stage in enumerate(ref.image_stages(net.clip.visual, batch["image"])):
            out[f"stage{i + 1}"] = stage.numpy() if i else np.array(stage.shape)  # stage 1 feeds no head
        for p in PROGRESSES:
            total, parts = objective(net, batch, p)
            out[f"loss/{p}"] = np.array([float(total)] + [float(parts[n]) for n in lc.PART_NAMES])
    return out


def main():
    oc = import_open_clip()
    rng, gen = np.random.default_rng(7), torch.Generator().manual_seed(7)
    arrays = make_batch(rng)
    net, _, objective = ref.build_network(oc, "lightclip", TINY, seed=7)
    net.train()  # as the benchmark: BatchNorm on batch statistics
    used = np.unique(np.concatenate([arrays["tokens"].ravel(), arrays["mlm_tokens"].ravel()]))
    kept = np.unique(np.concatenate([used, rng.integers(0, TINY.vocab_size + 1, EXTRA_HEAD_ROWS)]))
    randomize_(net, torch.from_numpy(kept), gen)
    flat, index = weights(net)
    golden = {**{f"batch/{k}": v for k, v in arrays.items() if k != "image"}, "weights": flat,
              **run_reference(net, objective, arrays)}  # the images reach mindclip only as their stages
    golden["meta_json"] = np.array(json.dumps({
        "weights": index, "tiny_arch": TINY._asdict(), "progresses": PROGRESSES, "parts": ("total",) + lc.PART_NAMES,
        "loss_weights": lc.LOSS_WEIGHTS, "soft_targets": lc.SOFT_TARGETS, "tiny_shapes": parameter_groups(net),
        "bench": bench_facts(oc), "reference_sha256": reference_sha256(), "torch": torch.__version__, "open_clip": oc.__version__}))
    np.savez_compressed(OUT, **golden)
    print(f"{OUT}: {os.path.getsize(OUT) / 1e3:.1f} kB, {len(golden)} arrays")


if __name__ == "__main__":
    main()
