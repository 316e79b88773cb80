"""Small file helpers shared across the package (depends on nothing in it)."""
import json
import os


def write_json_atomic(path, obj):
    """Write `obj` as indented JSON to `path` through a temporary file renamed over it: a reader
    sees the old file or the complete new one, never half of it. Returns `path`."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)
    return path


def append_json_line(path, obj):
    """Append `obj` as one JSON line to `path` (a benchmark's `--json` log); nothing when `path` is empty."""
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(obj) + "\n")
