"""The JSON sidecar of an export folder: everything a deployment needs besides the two graphs.

Layout (format_version 1)::

    {"format": "mindclip-export", "format_version": 1,
     "model":  {"name", "checkpoint", "embed_dim", "logit_scale" (exp'd, as used), "log_logit_scale"},
     "image":  {"file", "sha256", "input": {"name", "shape": [null, 3, H, W], "dtype": "float32"}, "output",
                "image_size", "resize": "shorter side, bicubic", "crop": "center", "mean", "std"},
     "text":   {"file", "sha256", "input": {"name", "shape": [null, L], "dtype": "int32"}, "output", "context_length",
                "vocab_size", "tokenizer_vocab_sha256", "sot_token_id", "eot_token_id", "pad_token_id"},
     "export": {"fp16", "dynamic_batch", "tolerance", "verify_batch_sizes", "mindspore_version",
                "mindclip_version", "created"},
     "verification": {"image": {"1": max_abs_diff, "5": ...}, "text": {...}, "passed"}}

`input.name` is the graph input's name inside the MINDIR file (what `converter_lite` needs).
The sidecar is written last, after verification: a folder without one is not a finished export.
"""
import hashlib
import json
import os

from mindclip._io import write_json_atomic

SIDECAR_NAME = "mindclip_export.json"
FORMAT = "mindclip-export"
FORMAT_VERSION = 1

_REQUIRED = {
    "model": ("embed_dim", "logit_scale"),
    "image": ("file", "sha256", "input", "image_size", "mean", "std"),
    "text": ("file", "sha256", "input", "context_length", "tokenizer_vocab_sha256"),
    "export": ("fp16",),
}


class SidecarError(ValueError):
    """A sidecar that is missing, unreadable, incomplete, or does not match the files beside it."""


def file_sha256(path, chunk=1 << 20):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_path(export_dir):
    """Path of the sidecar inside an export folder."""
    return os.path.join(export_dir, SIDECAR_NAME)


def write_sidecar(export_dir, sidecar):
    """Write `sidecar` (a dict) atomically as indented JSON; returns its path."""
    return write_json_atomic(sidecar_path(export_dir), sidecar)


def _load_json(path):
    if not os.path.isfile(path):
        raise SidecarError(f"{path}: sidecar not found; is this a folder written by tools/export.py?")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SidecarError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None


def _check_keys(path, sidecar):
    if not isinstance(sidecar, dict):
        raise SidecarError(f"{path}: the top level must be a JSON object")
    if sidecar.get("format") != FORMAT:
        raise SidecarError(f"{path}: 'format' is {sidecar.get('format')!r}, expected {FORMAT!r}")
    if sidecar.get("format_version") != FORMAT_VERSION:
        raise SidecarError(f"{path}: 'format_version' is {sidecar.get('format_version')!r}, "
                           f"this mindclip reads version {FORMAT_VERSION}")
    for section, keys in _REQUIRED.items():
        if not isinstance(sidecar.get(section), dict):
            raise SidecarError(f"{path}: missing section '{section}'")
        for key in keys:
            if key not in sidecar[section]:
                raise SidecarError(f"{path}: missing key '{section}.{key}'")


def read_sidecar(export_dir, check_files=True):
    """Read and validate the sidecar of `export_dir`.

    Checks the format and version, that every required key is present and, with `check_files`,
    that each MINDIR file named exists and has the SHA-256 recorded (so a sidecar copied next to
    other files is refused). Raises `SidecarError` naming the file and key at fault.
    """
    path = sidecar_path(export_dir)
    sidecar = _load_json(path)
    _check_keys(path, sidecar)
    if check_files:
        for tower in ("image", "text"):
            file_path = os.path.join(export_dir, sidecar[tower]["file"])
            if not os.path.isfile(file_path):
                raise SidecarError(f"{path}: '{tower}.file' names {file_path}, which does not exist")
            digest = file_sha256(file_path)
            if digest != sidecar[tower]["sha256"]:
                raise SidecarError(f"{path}: '{tower}.sha256' does not match {file_path} (file has {digest[:12]}..., "
                                   f"sidecar says {str(sidecar[tower]['sha256'])[:12]}...): the sidecar belongs "
                                   f"to another export")
    return sidecar
