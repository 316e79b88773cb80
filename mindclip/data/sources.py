"""Readers for every input format; each yields `RawSample`s without opening any image.

Formats (`fmt`):

- ``csv`` / ``tsv``: open_clip's layout, a header row then one pair per line; image path column
  `img_key` (default ``filepath``) and caption column `caption_key` (default ``title``); the
  separator is ``\\t`` for .tsv and for .csv files unless `separator` says otherwise (open_clip writes
  tab-separated .csv files). ``tsv`` has no quote processing (CC3M, img2dataset); ``csv`` has CSV
  quoting within a line. Every line is one record: a line that is not exactly one row is a bad
  record, never merged with the next or cut (mindclip/data/delimited.py).
- ``jsonl``: one JSON object per line with `img_key` (default ``filename``) and `caption_key`
  (default ``caption``): the DeCLIP / YFCC15M meta format.
- ``wds``: webdataset tar shards as img2dataset writes them: members ``KEY.jpg`` (or png, webp,
  ...), ``KEY.txt`` and/or ``KEY.json`` (its ``caption`` field is used when there is no .txt),
  optional ``KEY.summary.txt`` and ``KEY.npy`` (ROI features).
- ``coco``: COCO caption JSON (``captions_train2017.json``): one pair per annotation.
- ``karpathy``: Karpathy-split JSON (``dataset_coco.json``, ``dataset_flickr30k.json``): one
  pair per sentence, optionally only some splits.

Relative image paths are resolved against `image_root` (default: the directory of the file that
names them). `summary_key` / `roi_key` name the optional PyramidCLIP columns (text summary; path
of a ``.npy`` of ROI features) in csv and jsonl inputs.
"""
import dataclasses
import glob
import json
import os
import re
import tarfile
from typing import List, Optional, Union

from mindclip.data.delimited import read_header, read_records

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
FORMATS = ("csv", "tsv", "jsonl", "wds", "coco", "karpathy")

Text = Union[str, bytes, None]


@dataclasses.dataclass
class RawSample:
    """One record of an input, before any file is opened or validated.

    `caption` is a list for sources that give several captions per image (COCO, Karpathy): each
    becomes its own output pair while the image is decoded once.
    """

    where: str  # names the record in the report: "train.csv:12", "00001.tar:000123"
    image: Union[str, bytes, None] = None  # a path, or the bytes (tar members)
    caption: Union[Text, List[Text]] = None
    summary: Text = None
    roi: Union[str, bytes, None] = None  # a .npy path, or its bytes
    error: Optional[str] = None  # set when the record itself could not be parsed


@dataclasses.dataclass(frozen=True)
class SourceOptions:
    """How to read an input; see the module docstring."""

    img_key: Optional[str] = None  # default: "filepath" (csv), "filename" (jsonl)
    caption_key: Optional[str] = None  # default: "title" (csv), "caption" (jsonl)
    separator: Optional[str] = None  # csv only; default tab
    image_root: Optional[str] = None
    summary_key: Optional[str] = None
    roi_key: Optional[str] = None
    splits: Optional[tuple] = None  # karpathy only: e.g. ("train", "restval"); None = all


def expand_paths(specs):
    """Expand `{000..123}` ranges and globs in a path or list of paths; keep the given order."""
    if isinstance(specs, str):
        specs = [specs]
    paths = []
    for spec in specs:
        for pattern in _expand_braces(spec):
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            if not matches or not os.path.exists(matches[0]):
                raise FileNotFoundError(f"input {pattern!r} matches no file")
            paths.extend(matches)
    return paths


def _expand_braces(spec):
    match = re.search(r"\{(\d+)\.\.(\d+)\}", spec)
    if not match:
        return [spec]
    first, last = match.group(1), match.group(2)
    width = len(first)
    head, tail = spec[: match.start()], spec[match.end():]
    return [p for i in range(int(first), int(last) + 1) for p in _expand_braces(f"{head}{i:0{width}d}{tail}")]


def detect_format(path):
    """Guess the format from the extension (and, for .json, the top-level keys)."""
    name = path.lower()
    for ext, fmt in ((".tsv", "tsv"), (".csv", "csv"), (".jsonl", "jsonl"), (".tar", "wds")):
        if name.endswith(ext):
            return fmt
    if name.endswith(".json"):
        return _detect_json_format(path)
    raise ValueError(f"{path}: cannot tell the input format from the name; pass fmt= (one of {FORMATS})")


def _detect_json_format(path):
    """A .json file is JSON-lines when its first line is a whole object without "images"."""
    with open(path, "rb") as f:
        first_line = f.readline()
        f.seek(0)
        head = f.read(1 << 16)
    try:
        first = json.loads(first_line)
    except ValueError:
        first = None
    if isinstance(first, dict) and "images" not in first:
        return "jsonl"
    return "karpathy" if b'"sentences"' in head else "coco"


class InputError(ValueError):
    """An input that cannot be converted at all (no such file, unknown format, no header row)."""


def check_inputs(paths, fmt=None, options=SourceOptions()):
    """Expand `paths` and check each before anything is written: it exists, its format is known, and
    a CSV/TSV header names the needed columns. Returns the expanded paths; raises `InputError`."""
    try:
        expanded = expand_paths(paths)
        for path in expanded:
            kind = fmt or detect_format(path)
            if kind not in FORMATS:
                raise ValueError(f"unknown input format {kind!r}; expected one of {FORMATS}")
            if kind in ("csv", "tsv"):
                separator, wanted, _, _ = _delimited_options(options)
                read_header(path, separator, kind == "csv", wanted)
    except (ValueError, OSError) as e:
        raise InputError(str(e)) from e
    return expanded


def read_samples(paths, fmt=None, options=SourceOptions(), expand=True):
    """Yield `RawSample`s from every file in `paths` (expanded with `expand_paths` unless `expand`
    is False: the paths of `check_inputs`)."""
    for path in expand_paths(paths) if expand else paths:
        kind = fmt or detect_format(path)
        if kind not in FORMATS:
            raise ValueError(f"unknown input format {kind!r}; expected one of {FORMATS}")
        yield from _READERS[kind](path, options)


def _root(path, options):
    return options.image_root if options.image_root is not None else os.path.dirname(os.path.abspath(path))


def _resolve(root, name):
    return name if os.path.isabs(name) else os.path.join(root, name)


def _delimited_options(options):
    """(separator, wanted columns, img_key, caption_key) of a CSV/TSV input."""
    img_key, caption_key = options.img_key or "filepath", options.caption_key or "title"
    separator = options.separator or "\t"
    wanted = [k for k in (img_key, caption_key, options.summary_key, options.roi_key) if k]
    return separator, wanted, img_key, caption_key


def _read_delimited(path, options, quoted):
    """Rows of an open_clip CSV/TSV, one `RawSample` per physical line (mindclip/data/delimited.py):
    a line that is not exactly one row (bad quoting, too many or too few fields) is a bad record."""
    separator, wanted, img_key, caption_key = _delimited_options(options)
    root = _root(path, options)
    for record in read_records(path, separator, quoted, wanted):
        where = f"{path}:{record.line}"
        if record.error:
            yield RawSample(where, error=record.error)
            continue
        row = record.fields
        yield RawSample(where, image=_resolve(root, row[img_key]), caption=row[caption_key],
                        summary=row[options.summary_key] if options.summary_key else None,
                        roi=_resolve(root, row[options.roi_key]) if options.roi_key else None)


def read_csv(path, options):
    """An open_clip CSV: CSV quoting within each line (tab-separated unless `separator` says otherwise)."""
    return _read_delimited(path, options, quoted=True)


def read_tsv(path, options):
    """A TSV as CC3M and img2dataset write them: split at every separator, no quote processing."""
    return _read_delimited(path, options, quoted=False)


def read_jsonl(path, options):
    """Lines of a JSON-lines file (DeCLIP / YFCC15M meta format)."""
    img_key, caption_key = options.img_key or "filename", options.caption_key or "caption"
    root = _root(path, options)
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                obj = json.loads(line)
                image = obj[img_key]
                if not isinstance(image, str):
                    raise TypeError(f"{img_key!r} is not a string")
            except (ValueError, KeyError, TypeError) as e:
                yield RawSample(where, error=f"{type(e).__name__}: {e}")
                continue
            roi = obj.get(options.roi_key) if options.roi_key else None
            yield RawSample(where, image=_resolve(root, image), caption=obj.get(caption_key),
                            summary=obj.get(options.summary_key) if options.summary_key else None,
                            roi=_resolve(root, roi) if isinstance(roi, str) else None)


def read_tar(path, options):
    """Samples of a webdataset tar; a truncated tar yields one bad record and stops there."""
    name = os.path.basename(path)
    group_key, members = None, {}
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, _, ext = member.name.partition(".")
                if key != group_key and members:
                    yield _tar_sample(f"{name}:{group_key}", members)
                    members = {}
                group_key = key
                members[ext.lower()] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as e:
        yield RawSample(f"{name}:{group_key or ''}", error=f"truncated or corrupt tar: {e}")
        return
    if members:
        yield _tar_sample(f"{name}:{group_key}", members)


def _tar_sample(where, members):
    image = next((members[e] for e in IMAGE_EXTENSIONS if e in members), None)
    caption, summary = members.get("txt"), members.get("summary.txt")
    if "json" in members and (caption is None or summary is None):
        try:
            meta = json.loads(members["json"])
        except ValueError as e:
            return RawSample(where, error=f"bad {where}.json: {e}")
        caption = meta.get("caption") if caption is None else caption
        summary = meta.get("summary") if summary is None else summary
    return RawSample(where, image=image, caption=caption, summary=summary,
                     roi=members.get("npy", members.get("roi.npy")))


def read_coco(path, options):
    """COCO caption JSON: one `RawSample` per image holding all its captions."""
    root = _root(path, options)
    with open(path, encoding="utf-8") as f:
        coco = json.load(f)
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    captions = {}
    for ann in coco["annotations"]:
        captions.setdefault(ann["image_id"], []).append(ann.get("caption"))
    for image_id, caps in captions.items():
        if image_id not in files:
            yield RawSample(f"{path}:image_id {image_id}", error="annotation names an unknown image id")
            continue
        yield RawSample(f"{path}:{files[image_id]}", image=_resolve(root, files[image_id]), caption=caps)


def read_karpathy(path, options):
    """Karpathy-split JSON: one `RawSample` per image of the chosen splits with its sentences."""
    root = _root(path, options)
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    for image in data["images"]:
        if options.splits and image.get("split") not in options.splits:
            continue
        name = os.path.join(image.get("filepath", ""), image["filename"])
        yield RawSample(f"{path}:{name}", image=_resolve(root, name),
                        caption=[s.get("raw") for s in image.get("sentences", [])])


_READERS = {"csv": read_csv, "tsv": read_tsv, "jsonl": read_jsonl, "wds": read_tar,
            "coco": read_coco, "karpathy": read_karpathy}
