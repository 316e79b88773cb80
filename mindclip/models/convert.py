"""open_clip / OpenAI CLIP state dicts -> mindclip weights (relative names), with NumPy only.

    state = read_state_dict("ViT-B-32.safetensors")        # {open_clip name: np.ndarray}
    weights = convert_open_clip_state(state, model)       # {mindclip relative name: np.ndarray}
    load_weights(model, weights)                          # mindclip.models.weights

OpenAI's released weights and open_clip's CLIP models share one naming (`visual.*`,
`transformer.resblocks.*`, `token_embedding.weight`, ...), so one mapping serves both. Torch
layouts already match ours (Linear/Conv weights (out, in, ...), `proj` (W, E)); two things change:
BatchNorm names (weight/bias/running_* -> gamma/beta/moving_*) and the ResNet attention pool, whose
separate q/k/v projections are packed into one `in_proj_weight` and whose `c_proj` is `out_proj`.
"""
import json
import os
import re
import struct

import numpy as np

from mindclip.models.text import open_clip_text_names
from mindclip.tokenizer import VOCAB_SIZE

# Entries of OpenAI checkpoints that are not weights (sizes stored as tensors) or are BatchNorm counters.
IGNORED_KEYS = ("input_resolution", "context_length", "vocab_size")
IGNORED_SUFFIXES = (".num_batches_tracked",)
_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
                       "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_BN_NAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def read_safetensors(path):
    """A `.safetensors` file -> {name: np.ndarray}; bf16 is widened to float32.

    Format: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}
    (plus an optional `__metadata__`), then the raw little-endian buffers.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
    (header_len,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8:8 + header_len])
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a safetensors file (bad JSON header: {e})") from e
    body = memoryview(data)[8 + header_len:]
    state = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = body[start:end]
        if info["dtype"] == "BF16":  # bfloat16 = the high 16 bits of a float32
            array = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in _SAFETENSORS_DTYPES:
            array = np.frombuffer(raw, np.dtype(_SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<"))
        else:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        state[name] = array.reshape(info["shape"]).copy()
    return state


def read_torch_checkpoint(path):
    """A `.pt` / `.pth` / `.bin` checkpoint (OpenAI TorchScript archive or a pickled state dict); needs torch."""
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"{path}: reading a PyTorch checkpoint needs torch, which is not installed. Either "
                          "install torch (CPU is enough) or convert the file to .safetensors where torch is "
                          "available: safetensors.torch.save_file(torch.load(...)) ; then pass the "
                          ".safetensors file.") from e
    try:
        state = torch.jit.load(path, map_location="cpu").state_dict()  # OpenAI's released .pt files
    except RuntimeError:
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:  # open_clip training checkpoints
        state = state["state_dict"]
    return {re.sub(r"^module\.", "", k): v.detach().float().numpy() if v.is_floating_point() else v.numpy()
            for k, v in state.items()}


def read_state_dict(path):
    """Read an open_clip / OpenAI state dict by file extension: `.safetensors` (NumPy) or `.pt/.pth/.bin` (torch)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    if path.endswith((".pt", ".pth", ".bin")):
        return read_torch_checkpoint(path)
    raise ValueError(f"{path}: unknown checkpoint format; expected .safetensors, .pt, .pth or .bin")


def _bn_source(ours):
    """`...bn1.gamma` -> `...bn1.weight` (MindSpore BatchNorm names -> PyTorch's)."""
    head, _, last = ours.rpartition(".")
    return f"{head}.{_BN_NAMES.get(last, last)}"


def _resnet_source(ours):
    """Our ModifiedResNet name -> the open_clip name (without `visual.`); attention pool handled apart."""
    name = re.sub(r"\.downsample\.conv\.", ".downsample.0.", ours)
    name = re.sub(r"\.downsample\.bn\.", ".downsample.1.", name)
    return _bn_source(name)


def open_clip_image_names(visual):
    """{our relative name (in the tower): open_clip name (in `visual.`) or a tuple of names to concatenate}.

    LeFF's depth-wise convolutions (`mlp.dwconv.*`) have no counterpart in CLIP and are left out.
    """
    from mindclip.models.modified_resnet import ModifiedResNet

    names = {}
    for ours, _ in visual.parameters_and_names():
        if isinstance(visual, ModifiedResNet):
            if ours.startswith("attnpool.attn.in_proj_"):
                kind = ours.rsplit("_", 1)[1]  # weight | bias
                names[ours] = tuple(f"attnpool.{p}_proj.{kind}" for p in "qkv")
            elif ours.startswith("attnpool.attn.out_proj."):
                names[ours] = "attnpool.c_proj." + ours.rsplit(".", 1)[1]
            else:
                names[ours] = _resnet_source(ours)
        elif ".mlp.dwconv." not in ours:
            names[ours] = re.sub(r"^resblocks\.", "transformer.resblocks.", ours)
    return names


def clip_source_names(model):
    """{mindclip relative name: open_clip name or tuple} for a whole CLIP (`visual.`, `text.`, `logit_scale`)."""
    names = {"visual." + k: (tuple("visual." + n for n in v) if isinstance(v, tuple) else "visual." + v)
             for k, v in open_clip_image_names(model.visual).items()}
    names.update({"text." + k: v for k, v in open_clip_text_names(model.text.num_layers).items()})
    names["logit_scale"] = "logit_scale"
    return names


def convert_open_clip_state(state, model):
    """Map an open_clip / OpenAI CLIP state dict onto `model`'s relative names.

    Args:
        state: {open_clip name: np.ndarray} (see `read_state_dict`); a `module.` prefix is accepted.
        model: the mindclip CLIP (ModifiedResNet or VisionTransformer image tower) to fill.

    Returns:
        {relative name: float32 np.ndarray}, ready for `mindclip.models.weights.load_weights`;
        the parameters listed by `kept_at_init(model)` keep their current (initial) values.
        Shapes are checked there; here every mapped source name must exist and every source
        weight must be used, otherwise ValueError lists the names (a wrong preset shows up at once).
    """
    state = {re.sub(r"^module\.", "", k): v for k, v in state.items()}
    converted, missing, used = {}, [], set()
    for ours, theirs in clip_source_names(model).items():
        sources = theirs if isinstance(theirs, tuple) else (theirs,)
        absent = [s for s in sources if s not in state]
        if absent:
            missing.extend(absent)
            continue
        used.update(sources)
        arrays = [np.asarray(state[s], np.float32) for s in sources]
        converted[ours] = np.concatenate(arrays, axis=0) if len(arrays) > 1 else arrays[0]
    unused = sorted(k for k in state if k not in used and k not in IGNORED_KEYS and not k.endswith(IGNORED_SUFFIXES))
    if missing or unused:
        raise ValueError(f"the open_clip state dict does not match the model ({type(model.visual).__name__} image "
                         f"tower): missing {len(missing)} {missing[:12]}; unused {len(unused)} {unused[:12]}")
    for name in kept_at_init(model):
        converted[name] = dict(model.parameters_and_names())[name].asnumpy()
    return converted


def kept_at_init(model):
    """Parameters CLIP has no weights for (LeFF's depth-wise convolutions): converted with their initial values."""
    return sorted(name for name, _ in model.parameters_and_names() if ".mlp.dwconv." in name)


def preset_from_open_clip_config(config, quick_gelu=False):
    """An open_clip model config (`model_configs/*.json` layout) -> a mindclip preset mapping.

    ModifiedResNet when `vision_cfg.layers` is a list, ViT otherwise; heads follow open_clip
    (`width // head_width`, times 32 for the ResNet); `quick_gelu` is True for OpenAI weights.
    """
    vision, text = config["vision_cfg"], config["text_cfg"]
    head_width = vision.get("head_width", 64)
    act = "quick_gelu" if quick_gelu else "gelu"
    if isinstance(vision["layers"], (list, tuple)):
        image = {"backbone": "modified_resnet", "image_size": vision["image_size"],
                 "tower": {"layers": list(vision["layers"]), "width": vision["width"],
                           "heads": vision["width"] * 32 // head_width}}
    else:
        image = {"backbone": "vit", "image_size": vision["image_size"],
                 "tower": {"patch_size": vision["patch_size"], "width": vision["width"], "layers": vision["layers"],
                           "heads": vision["width"] // head_width, "mlp_ratio": vision.get("mlp_ratio", 4.0),
                           "act": act}}
    text_section = {"context_length": text.get("context_length", 77), "vocab_size": text.get("vocab_size", VOCAB_SIZE),
                    "width": text["width"], "heads": text["heads"], "layers": text["layers"], "act": act}
    return {"embed_dim": config["embed_dim"], "image": image, "text": text_section}


__all__ = ["read_safetensors", "read_torch_checkpoint", "read_state_dict", "open_clip_image_names",
           "clip_source_names", "convert_open_clip_state", "kept_at_init", "preset_from_open_clip_config"]
