"""Checkpoints keyed by relative parameter names (`cell.parameters_and_names()`), never by `param.name`.

A model checkpoint holds a CLIP's weights under their relative names (`visual.proj.weight`). A
training checkpoint holds the same, plus pre-training-only cells under `pretrain.`, optimizer state
under `optim.` and bookkeeping under `meta.` (mindclip/train/checkpoint.py writes it). Loading a CLIP
from either kind of file works: with `prefix=""` the `pretrain.` / `optim.` / `meta.` namespaces,
string entries and the entries saved as `extra` are not model weights. Every file is written with a
CRC32 and every read checks it (mindclip/models/integrity.py); `load_weights` refuses NaN/Inf
weights. With this module alone a training checkpoint can be written as

    save_weights(clip, path, extra={**named_weights(pretrain, "pretrain.", exclude=("clip.",)),
                                    **named_weights(optimizer, "optim."), "step": 1200})
"""
import os

import numpy as np
import mindspore as ms

from mindclip.models.integrity import CheckpointError, check_finite, verify_checksum
from mindclip.tokenizer import MASK_ID

RESERVED_PREFIXES = ("pretrain.", "optim.", "meta.")
EXTRA_KEYS_ENTRY = "__extra_keys__"  # string entry: the names saved from `extra`, one per line
MAX_LISTED = 12


def named_weights(cell, prefix="", exclude=()):
    """{prefix + relative name: Parameter} for every parameter of `cell`, except names under `exclude`."""
    return {prefix + name: param for name, param in cell.parameters_and_names()
            if not any(name.startswith(skip) for skip in exclude)}


def _to_tensor(value):
    if isinstance(value, ms.Tensor):  # Parameter included
        return ms.Tensor(value.asnumpy())
    return ms.Tensor(np.asarray(value))


def save_weights(cell, path, extra=None):
    """Write every parameter of `cell` (trainable or not: BatchNorm statistics too) plus `extra`.

    Args:
        cell: the Cell whose weights are saved under their relative names.
        path: file to write, atomically (a temporary file then a rename).
        extra: {name: Tensor | np.ndarray | int | float | str}; names must not clash with the cell's.
    """
    extra = dict(extra or {})
    entries = {name: _to_tensor(param) for name, param in named_weights(cell).items()}
    clash = sorted(set(entries) & set(extra))
    if clash:
        raise ValueError(f"save_weights: extra entries clash with model weights: {clash[:MAX_LISTED]}")
    strings = {k: v for k, v in extra.items() if isinstance(v, str)}
    entries.update({k: _to_tensor(v) for k, v in extra.items() if not isinstance(v, str)})
    strings[EXTRA_KEYS_ENTRY] = "\n".join(sorted(extra))
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp.ckpt"  # MindSpore appends .ckpt to names that lack it
    ms.save_checkpoint([{"name": k, "data": v} for k, v in entries.items()], tmp, append_dict=strings,
                       crc_check=True)  # the CRC32 verify_checksum checks on every read
    os.replace(tmp, path)


def load_checkpoint_verified(path):
    """`mindspore.load_checkpoint(path)` after checking the file's CRC32 (when it carries one).

    Raises FileNotFoundError for a missing file, CheckpointError (a ValueError) for a corrupt or
    unparsable one.
    """
    verify_checksum(path)
    try:
        return ms.load_checkpoint(path)
    except Exception as e:  # MindSpore raises several types for a corrupt file
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(e).__name__}: {e})") from None


def read_checkpoint(path):
    """All entries of a checkpoint file: {name: np.ndarray (0-d for scalars) or str}, CRC-checked."""
    raw = load_checkpoint_verified(path)
    return {k: v if isinstance(v, str) else v.asnumpy() for k, v in raw.items()}


def _model_entries(state, prefix):
    """The entries of `state` that are weights for a cell loaded at `prefix`, with the prefix removed."""
    if prefix:
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    extra_keys = set(str(state.get(EXTRA_KEYS_ENTRY, "")).split("\n"))
    return {k: v for k, v in state.items()
            if k != EXTRA_KEYS_ENTRY and k not in extra_keys and not isinstance(v, str)
            and not k.startswith(RESERVED_PREFIXES)}


def _listed(names):
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > MAX_LISTED else "")


def load_weights(cell, path_or_dict, prefix="", strict=True, source=None):
    """Load weights into `cell` by relative name; returns (missing, unexpected) name lists.

    Args:
        cell: the Cell to fill (e.g. a CLIP, or the pre-training heads with prefix "pretrain.").
        path_or_dict: a checkpoint path, or {name: np.ndarray | Tensor}.
        prefix: read the entries under this prefix ("" = the model weights, see module docstring).
        strict: if True, any missing or unexpected name is an error; shape mismatches always are.
            The error lists the names (and shapes) concerned.
        source: the name errors give the weights (default: the path, or "<dict>").

    A weight holding NaN or Inf is always refused (CheckpointError naming it): nothing loads.
    """
    source = source or (path_or_dict if isinstance(path_or_dict, str) else "<dict>")
    state = read_checkpoint(path_or_dict) if isinstance(path_or_dict, str) else dict(path_or_dict)
    entries = _model_entries(state, prefix)
    params = dict(cell.parameters_and_names())
    missing = sorted(set(params) - set(entries))
    unexpected = sorted(set(entries) - set(params))
    mismatched = [f"{name}: checkpoint {tuple(np.shape(entries[name]))} vs model {tuple(params[name].shape)}"
                  for name in sorted(set(params) & set(entries))
                  if tuple(np.shape(entries[name])) != tuple(params[name].shape)]
    problems = []
    if mismatched:
        problems.append(f"shape mismatch: {_listed(mismatched)}")
        if any(m.startswith("text.token_embedding") for m in mismatched):
            problems.append(f"(an MLM-trained text tower has {MASK_ID + 1} rows: create the model with "
                            f"text.vocab_size={MASK_ID + 1})")
    if strict and missing:
        problems.append(f"missing {len(missing)}: {_listed(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected {len(unexpected)}: {_listed(unexpected)}")
    if problems:
        where = f" under prefix {prefix!r}" if prefix else ""
        raise ValueError(f"checkpoint {source}{where} does not fit {type(cell).__name__}: " + "; ".join(problems))
    loaded = sorted(set(params) & set(entries))
    check_finite({name: entries[name] for name in loaded}, f"checkpoint {source}")
    for name in loaded:
        value = entries[name]
        value = value.asnumpy() if isinstance(value, ms.Tensor) else np.asarray(value)
        params[name].set_data(ms.Tensor(value, params[name].dtype))
    return missing, unexpected
