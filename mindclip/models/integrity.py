"""Checkpoint integrity: the CRC32 each file carries, and finite values.

Every checkpoint mindclip writes is saved with `mindspore.save_checkpoint(..., crc_check=True)`:
MindSpore appends `b"crc_num"` and the CRC32 of everything before it (10 bytes, big-endian) to the
file, and `mindspore.load_checkpoint` strips that tail, so the file stays a plain MindSpore
checkpoint. `verify_checksum` recomputes the CRC itself (MindSpore's own check logs a warning and
loads a file without a CRC, and reports a mismatch as "may not have permission to read it").
A file without the tail (converted weights from elsewhere, checkpoints written before checksums)
is reported as unverified, never refused for that alone.
"""
import binascii
import os

import numpy as np

CRC_MARK = b"crc_num"
CRC_TAIL = len(CRC_MARK) + 10  # the mark, then the CRC32 as 10 big-endian bytes
CHUNK = 64 << 20
MAX_LISTED = 5


class CheckpointError(ValueError):
    """A checkpoint file that must not be used: missing, corrupt, incomplete or with non-finite values."""


def verify_checksum(path):
    """True when `path` carries a CRC32 that matches its bytes, False when it carries none.

    Raises FileNotFoundError for a missing file, CheckpointError when the CRC does not match.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    size = os.path.getsize(path)
    if size < CRC_TAIL:
        raise CheckpointError(f"{path}: {size} bytes is too short to be a checkpoint (truncated)")
    with open(path, "rb") as f:
        f.seek(size - CRC_TAIL)
        tail = f.read(CRC_TAIL)
        if tail[:len(CRC_MARK)] != CRC_MARK:
            return False
        expected = int.from_bytes(tail[len(CRC_MARK):], byteorder="big")
        f.seek(0)
        crc, left = 0, size - CRC_TAIL
        while left:
            block = f.read(min(CHUNK, left))
            if not block:
                break
            crc = binascii.crc32(block, crc)
            left -= len(block)
    if crc != expected:
        raise CheckpointError(f"{path}: checksum mismatch (CRC32 {crc:08x}, the file says {expected:08x}): "
                              f"the file is corrupt")
    return True


def nonfinite_names(state):
    """Names of the float entries of `state` ({name: array | Tensor | str}) holding NaN or Inf."""
    bad = []
    for name, value in state.items():
        if isinstance(value, str):
            continue
        array = value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            bad.append(name)
    return sorted(bad)


def check_finite(state, source):
    """Raise CheckpointError naming the entries of `state` (read from `source`) that are not finite."""
    bad = nonfinite_names(state)
    if bad:
        shown = ", ".join(bad[:MAX_LISTED]) + (f", ... ({len(bad)} in all)" if len(bad) > MAX_LISTED else "")
        raise CheckpointError(f"{source}: non-finite values (NaN or Inf) in {shown}: refusing these weights")
