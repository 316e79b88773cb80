"""Make the weight-conversion goldens: tiny open_clip CLIPs with random weights and their embeddings.

Run once, only with the reference venv (torch + open_clip), from the repository root:

    /work/refvenv/bin/python ut/data/make_convert_goldens.py

For each tower kind (`rn`: ModifiedResNet, `vit`: VisionTransformer) it writes
  ut/data/convert_golden_<kind>.safetensors  the open_clip state dict (open_clip/OpenAI naming, fp32)
  ut/data/convert_golden_<kind>.npz          inputs (`images`, `tokens`), the reference outputs
                                             (`image_features`, `text_features`, unnormalised) and
                                             the open_clip config as JSON (`config_json`)
mindclip never imports torch or open_clip; `ut/test_convert.py` reads only these files.
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(OUT_DIR)))  # the checkout's mindclip (a generator, not a tool)
from mindclip.bench.torchvision_stub import import_open_clip  # noqa: E402

TEXT_CFG = dict(context_length=16, vocab_size=100, width=16, heads=2, layers=4)  # mindclip: layers % 4 == 0
CONFIGS = {
    "rn": dict(embed_dim=32, vision_cfg=dict(layers=[1, 1, 1, 1], width=8, head_width=64, image_size=64),
               text_cfg=TEXT_CFG),
    "vit": dict(embed_dim=32, vision_cfg=dict(layers=3, width=32, head_width=16, patch_size=8, image_size=32),
                text_cfg=TEXT_CFG),
}
BATCH = 2


def randomize_(model, gen):
    """Give norms and BatchNorm statistics non-default values so that every mapping is exercised."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=gen))
            elif name.endswith("running_mean") or name.endswith(".bias"):
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=gen))
            elif tensor.ndim == 1 and name.endswith(".weight"):  # LayerNorm / BatchNorm scale
                tensor.copy_(1.0 + 0.1 * torch.randn(tensor.shape, generator=gen))


def make_tokens(gen, vocab, context):
    """(B, context) ids: SOT first, random words, EOT (the largest id), zero padding."""
    sot, eot = vocab - 2, vocab - 1
    tokens = torch.zeros(BATCH, context, dtype=torch.int64)
    for row, length in enumerate([5, context - 2]):
        tokens[row, 0] = sot
        tokens[row, 1:length + 1] = torch.randint(1, sot, (length,), generator=gen)
        tokens[row, length + 1] = eot
    return tokens


def make_golden(model_module, kind, cfg, seed):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = model_module.CLIP(**cfg, quick_gelu=True).eval()
    randomize_(model, gen)
    size = cfg["vision_cfg"]["image_size"]
    images = torch.randn(BATCH, 3, size, size, generator=gen)
    tokens = make_tokens(gen, cfg["text_cfg"]["vocab_size"], cfg["text_cfg"]["context_length"])
    with torch.no_grad():
        image_features = model.encode_image(images, normalize=False)
        text_features = model.encode_text(tokens, normalize=False)
    state = {k: v.detach().float().numpy().copy() for k, v in model.state_dict().items()
             if v.is_floating_point()}
    save_file(state, os.path.join(OUT_DIR, f"convert_golden_{kind}.safetensors"))
    np.savez_compressed(
        os.path.join(OUT_DIR, f"convert_golden_{kind}.npz"),
        images=images.numpy(), tokens=tokens.numpy().astype(np.int32),
        image_features=image_features.numpy(), text_features=text_features.numpy(),
        config_json=np.array(json.dumps(dict(cfg, quick_gelu=True))))
    print(kind, {k: round(os.path.getsize(os.path.join(OUT_DIR, f"convert_golden_{kind}.{e}")) / 1e6, 3)
                 for k, e in (("safetensors", "safetensors"), ("npz", "npz"))}, "MB")


def main():
    model_module = import_open_clip().model
    for seed, (kind, cfg) in enumerate(CONFIGS.items()):
        make_golden(model_module, kind, cfg, seed)


if __name__ == "__main__":
    main()
