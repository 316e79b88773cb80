"""Training checkpoints: weights, optimizer state, step, data position and loss scale, atomically.

Names (docs/architecture.md): CLIP weights under their names relative to the CLIP cell, so
`mindclip.create_model(name, checkpoint=...)` loads a training checkpoint directly; pre-training-only
cells under `pretrain.`; AdamW moments under `optim.m.` / `optim.v.` + the weight's name; bookkeeping
under `meta.`. A write goes to a temporary file renamed over the target: an interrupted write never
replaces a good checkpoint. Each file carries a CRC32 (mindclip/models/integrity.py); a checkpoint
is used for resuming only when its CRC matches, it holds every `meta.` entry and every value is
finite.
"""
import glob
import os
import re

import mindspore as ms
import numpy as np

from mindclip.models.integrity import CheckpointError, check_finite
from mindclip.models.weights import load_checkpoint_verified

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
    ms.save_checkpoint(_entries(net, clip, optimizer, loss_scale, meta), tmp, crc_check=True)
    os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the complete new one


def read_training_checkpoint(path):
    """Every entry of a training checkpoint, verified: CRC32, all `meta.` entries, finite values.

    Raises FileNotFoundError, or CheckpointError saying what is wrong with the file.
    """
    state = load_checkpoint_verified(path)
    missing = [key for key in META_KEYS if "meta." + key not in state]
    if missing:
        raise CheckpointError(f"{path}: not a complete training checkpoint (no meta.{', meta.'.join(missing)})")
    check_finite(state, path)
    return state


def load_training_checkpoint(path, net, clip, optimizer, loss_scale, state=None):
    """Restore weights, optimizer and loss scale in place; return the meta dict.

    `state`: the entries already read by `read_training_checkpoint(path)` (read here when None).
    """
    state = read_training_checkpoint(path) if state is None else state
    names = weight_names(net, clip)
    missing, mismatched = [], []

    def put(target, key):
        if key not in state:
            missing.append(key)
        elif tuple(state[key].shape) != tuple(target.shape):
            mismatched.append(f"{key} {tuple(state[key].shape)} vs {tuple(target.shape)}")
        else:
            target.set_data(ms.Tensor(state[key].asnumpy(), target.dtype))

    for _, p in net.parameters_and_names():
        put(p, names[id(p)])
    for p, m, v in zip(optimizer.params, optimizer.moments1, optimizer.moments2):
        put(m, "optim.m." + names[id(p)])
        put(v, "optim.v." + names[id(p)])
    put(optimizer.step, "optim.step")
    put(loss_scale, "optim.loss_scale")
    if missing or mismatched:
        raise CheckpointError(f"{path}: does not fit this run's network: {len(missing)} entries missing "
                              f"{missing[:5]}, {len(mismatched)} of another shape {mismatched[:5]}")
    return {key: int(state["meta." + key].asnumpy()) for key in META_KEYS}


def list_checkpoints(output_dir):
    """Checkpoint files of a run, newest step first."""
    found = []
    for path in glob.glob(os.path.join(output_dir, "ckpt_step*.ckpt")):
        match = _CKPT_RE.search(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found, reverse=True)]


def checkpoint_step(path):
    """The step in a checkpoint's file name (`ckpt_step00000012.ckpt` -> 12), or None."""
    match = _CKPT_RE.search(os.path.basename(path))
    return int(match.group(1)) if match else None


def _reason(error, path):
    text = str(error)
    return text[len(path) + 2:] if text.startswith(path + ": ") else text


def find_resume_checkpoint(output_dir):
    """`(path, state, passed_over)`: the newest checkpoint of `output_dir` that verifies
    (`read_training_checkpoint`) with its entries, and `[(path, reason)]` for each newer one that
    did not. `(None, None, passed_over)` when none verifies."""
    passed_over = []
    for path in list_checkpoints(output_dir):
        try:
            return path, read_training_checkpoint(path), passed_over
        except (CheckpointError, FileNotFoundError) as e:
            passed_over.append((path, _reason(e, path)))
    return None, None, passed_over


def latest_good_checkpoint(output_dir):
    """The newest checkpoint of `output_dir` that verifies, or None."""
    return find_resume_checkpoint(output_dir)[0]


def set_aside(path, suffix):
    """Rename `path` to `path + suffix` (out of the checkpoint list, kept on disk); return the new name."""
    target = path + suffix
    os.replace(path, target)
    return target


def prune_checkpoints(output_dir, keep):
    """Delete all but the newest `keep` checkpoints (keep <= 0 keeps everything)."""
    if keep <= 0:
        return
    for path in list_checkpoints(output_dir)[keep:]:
        os.remove(path)
