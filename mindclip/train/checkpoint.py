"""Training checkpoints: weights, optimizer state, step, data position and loss scale, atomically.

Names (docs/architecture.md): CLIP weights under their names relative to the CLIP cell, so
`mindclip.create_model(name, checkpoint=...)` loads a training checkpoint directly; pre-training-only
cells under `pretrain.`; AdamW moments under `optim.m.` / `optim.v.` + the weight's name; bookkeeping
under `meta.`. A write goes to a temporary file renamed over the target: an interrupted write never
replaces a good checkpoint.
"""
import glob
import os
import re

import mindspore as ms
import numpy as np

CKPT_PATTERN = "ckpt_step{:08d}.ckpt"
_CKPT_RE = re.compile(r"ckpt_step(\d{8})\.ckpt$")
META_KEYS = ("step", "epoch", "batch_in_epoch", "skipped_steps", "seed")


def weight_names(net, clip):
    """Map id(Parameter) -> checkpoint name for every parameter of the training network `net`."""
    clip_ids = {id(p): name for name, p in clip.parameters_and_names()}
    names = {}
    for name, p in net.parameters_and_names():
        names[id(p)] = clip_ids.get(id(p), "pretrain." + name)
    return names


def _entries(net, clip, optimizer, loss_scale, meta):
    names = weight_names(net, clip)
    entries = [{"name": names[id(p)], "data": p} for _, p in net.parameters_and_names()]
    for p, m, v in zip(optimizer.params, optimizer.moments1, optimizer.moments2):
        entries.append({"name": "optim.m." + names[id(p)], "data": m})
        entries.append({"name": "optim.v." + names[id(p)], "data": v})
    entries.append({"name": "optim.step", "data": optimizer.step})
    entries.append({"name": "optim.loss_scale", "data": loss_scale})
    for key in META_KEYS:
        entries.append({"name": "meta." + key, "data": ms.Tensor(np.array(int(meta[key]), np.int64))})
    return entries


def save_training_checkpoint(path, net, clip, optimizer, loss_scale, meta):
    """Write everything needed to resume exactly; `meta` holds the META_KEYS as ints."""
    tmp = path[: -len(".ckpt")] + ".partial.ckpt"  # save_checkpoint insists on the .ckpt suffix
    ms.save_checkpoint(_entries(net, clip, optimizer, loss_scale, meta), tmp)
    os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the complete new one


def load_training_checkpoint(path, net, clip, optimizer, loss_scale):
    """Restore weights, optimizer and loss scale in place; return the meta dict."""
    state = ms.load_checkpoint(path)
    names = weight_names(net, clip)
    missing = []

    def put(target, key):
        if key not in state:
            missing.append(key)
            return
        target.set_data(ms.Tensor(state[key].asnumpy(), target.dtype))

    for _, p in net.parameters_and_names():
        put(p, names[id(p)])
    for p, m, v in zip(optimizer.params, optimizer.moments1, optimizer.moments2):
        put(m, "optim.m." + names[id(p)])
        put(v, "optim.v." + names[id(p)])
    put(optimizer.step, "optim.step")
    put(loss_scale, "optim.loss_scale")
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {len(missing)} entries, e.g. {missing[:5]}")
    return {key: int(state["meta." + key].asnumpy()) for key in META_KEYS}


def list_checkpoints(output_dir):
    """Checkpoint files of a run, newest step first."""
    found = []
    for path in glob.glob(os.path.join(output_dir, "ckpt_step*.ckpt")):
        match = _CKPT_RE.search(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found, reverse=True)]


def is_readable(path):
    """True when the file loads as a complete training checkpoint."""
    try:
        state = ms.load_checkpoint(path)
    except Exception:  # corrupt or truncated file: MindSpore raises several types
        return False
    return all("meta." + key in state for key in META_KEYS)


def latest_good_checkpoint(output_dir):
    """The newest checkpoint of `output_dir` that loads completely, or None."""
    for path in list_checkpoints(output_dir):
        if is_readable(path):
            return path
    return None


def prune_checkpoints(output_dir, keep):
    """Delete all but the newest `keep` checkpoints (keep <= 0 keeps everything)."""
    if keep <= 0:
        return
    for path in list_checkpoints(output_dir)[keep:]:
        os.remove(path)
