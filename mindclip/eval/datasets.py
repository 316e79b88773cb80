"""Readers for evaluation datasets in their real on-disk layouts.

Classification readers return a `ClassificationSet` (lazy images + integer labels); retrieval
readers return a `RetrievalSet` (lazy images + captions + the image index of every caption).
Images are only decoded when the encoder asks for them, as RGB `PIL.Image`s.

Layouts:
- ImageFolder: `root/<folder>/<image>`; class index = position of the folder in `folder_names`
  (for ImageNet the 1000 sorted WordNet ids shipped in `data/imagenet1k.json`), or the sorted
  folder names when no list is given (torchvision's convention).
- CIFAR-10/100 python batches: `cifar-10-batches-py/{data_batch_1..5,test_batch}`,
  `cifar-100-python/{train,test}` (fine labels), unpickled by a restricted unpickler that admits
  only what these files hold (`mindclip.eval.cifar_pickle`): a crafted file cannot run code.
- Classification CSV: a header with an image column (`image`, `filepath` or `path`) and `label`;
  image paths relative to the CSV's folder (or `image_root`); labels are integer class indices.
  Files ending in `.tsv` are tab-separated without quote processing (the demo's `val_labels.tsv`),
  others comma-separated with CSV quoting; one line is one row, and a line that is not exactly one
  row is refused naming the file and line (`mindclip.data.delimited`).
- Karpathy JSON (`dataset_coco.json`, `dataset_flickr30k.json`): images of one split with all
  their captions (`sentences[*].raw`), image path `image_root/[filepath/]filename`.
- Retrieval CSV: a header with an image column and a caption column (`caption`, `title` or
  `text`), one row per caption; rows of the same image need not be adjacent; images keep the order
  of their first row.
- Demo held-out data (`mindclip.data.demo`, `tools/make_demo_data.py`): `val_labels.tsv` for
  zero-shot, `val_captions.json` (Karpathy layout, split "test") for retrieval.
"""
import dataclasses
import json
import os
from typing import List, Optional, Sequence

import numpy as np
from PIL import Image

from mindclip.data.delimited import read_header, read_records
from mindclip.eval.cifar_pickle import load_cifar_batch

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


class FileImages:
    """Images stored as files, opened on demand."""

    def __init__(self, paths: Sequence[str]):
        self.paths = list(paths)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index) -> Image.Image:
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except (OSError, ValueError) as e:
            raise OSError(f"cannot read image {path}: {e}") from e


class ArrayImages:
    """Images held in memory as an (N, H, W, 3) uint8 array (CIFAR)."""

    def __init__(self, pixels: np.ndarray):
        if pixels.ndim != 4 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8:
            raise ValueError(f"expected (N, H, W, 3) uint8 pixels, got {pixels.shape} {pixels.dtype}")
        self.pixels = pixels

    def __len__(self):
        return len(self.pixels)

    def __getitem__(self, index) -> Image.Image:
        return Image.fromarray(self.pixels[index], mode="RGB")


@dataclasses.dataclass
class ClassificationSet:
    """Images and their class indices; `source` says where they were read from."""

    images: object  # FileImages or ArrayImages: len() and [i] -> PIL.Image
    labels: np.ndarray  # (N,) int64
    source: str

    def __len__(self):
        return len(self.labels)


@dataclasses.dataclass
class RetrievalSet:
    """Images, captions, and for every caption the index of the image it describes."""

    images: object
    captions: List[str]
    text_image_ids: np.ndarray  # (T,) int64
    source: str


# ----------------------------------------------------------------------------- classification
def list_class_folders(root: str) -> List[str]:
    """The sorted sub-folder names of an ImageFolder root (refused when there are none)."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder root not found: {root}")
    present = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not present:
        raise ValueError(f"{root}: no class sub-folders")
    return present


def read_image_folder(root: str, folder_names: Optional[Sequence[str]] = None) -> ClassificationSet:
    """Read `root/<class folder>/<image>`; class index = position of the folder in `folder_names`.

    With `folder_names=None` the sorted sub-folder names of `root` are the classes. A sub-folder
    that is not in `folder_names` is an error (a wrong root or a wrong list); listed folders that
    do not exist are classes without samples.
    """
    present = list_class_folders(root)
    names = list(present if folder_names is None else folder_names)
    index = {name: i for i, name in enumerate(names)}
    unknown = [d for d in present if d not in index]
    if unknown:
        raise ValueError(f"{root}: folders {unknown[:5]} are not among the {len(names)} expected class folders "
                         f"(first expected: {names[:3]})")
    paths, labels = [], []
    for folder in present:
        folder_path = os.path.join(root, folder)
        for name in sorted(os.listdir(folder_path)):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(os.path.join(folder_path, name))
                labels.append(index[folder])
    if not paths:
        raise ValueError(f"{root}: no images with extensions {IMAGE_EXTENSIONS}")
    return ClassificationSet(FileImages(paths), np.asarray(labels, dtype=np.int64), source=root)


_CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py", {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
                b"labels"),
    "cifar100": ("cifar-100-python", {"train": ["train"], "test": ["test"]}, b"fine_labels"),
}


def read_cifar(root: str, name: str = "cifar10", split: str = "test") -> ClassificationSet:
    """Read the CIFAR-10/100 python batches; `root` is the batches folder or the folder holding it."""
    if name not in _CIFAR_FILES:
        raise ValueError(f"unknown CIFAR variant {name!r}; expected one of {sorted(_CIFAR_FILES)}")
    folder, splits, label_key = _CIFAR_FILES[name]
    if split not in splits:
        raise ValueError(f"unknown CIFAR split {split!r}; expected one of {sorted(splits)}")
    if os.path.isdir(os.path.join(root, folder)):
        root = os.path.join(root, folder)
    pixels, labels = [], []
    for file_name in splits[split]:
        path = os.path.join(root, file_name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"CIFAR batch not found: {path}")
        batch = load_cifar_batch(path)  # restricted: admits only what CIFAR batches hold
        for key in (b"data", label_key):
            if key not in batch:
                raise ValueError(f"{path}: CIFAR batch has no {key.decode()!r} entry (keys: {sorted(batch)})")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(batch[label_key]):
            raise ValueError(f"{path}: expected data (N, 3072) with N labels, got {data.shape}")
        pixels.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # (N, 32, 32, 3)
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    return ClassificationSet(ArrayImages(np.ascontiguousarray(np.concatenate(pixels))), np.concatenate(labels),
                             source=root)


IMAGE_COLUMNS = ("image", "filepath", "path")
CAPTION_COLUMNS = ("caption", "title", "text")


def _read_csv_rows(path: str, columns: Sequence[Sequence[str]]):
    """Yield (line number, values) of a CSV/TSV whose header has one column of each alias group in
    `columns` (e.g. `(IMAGE_COLUMNS, ("label",))`); values follow the order of `columns`.

    One physical line is one row (`mindclip.data.delimited`): a .tsv is split at tabs without quote
    processing, a .csv at commas with CSV quoting within the line. A line that is not exactly one
    row (bad quoting, too many or too few fields) is an error naming the file and line: an
    evaluation set is read whole or not at all.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CSV file not found: {path}")
    tsv = path.lower().endswith(".tsv")
    separator = "\t" if tsv else ","
    header = read_header(path, separator, quoted=not tsv)
    chosen = []
    for aliases in columns:
        found = [a for a in aliases if a in header]
        if not found:
            raise ValueError(f"{path}:1: header {header} has no column named {' or '.join(aliases)}")
        chosen.append(found[0])
    for record in read_records(path, separator, quoted=not tsv):
        if record.error:
            raise ValueError(f"{path}:{record.line}: {record.error}")
        yield record.line, [record.fields[c] for c in chosen]


def _resolve(path: str, image_root: str) -> str:
    return path if os.path.isabs(path) else os.path.join(image_root, path)


def read_classification_csv(path: str, image_root: Optional[str] = None,
                            num_classes: Optional[int] = None) -> ClassificationSet:
    """Read a CSV with image and `label` columns (label = integer class index, checked < num_classes)."""
    image_root = os.path.dirname(os.path.abspath(path)) if image_root is None else image_root
    paths, labels = [], []
    for line, (image, label_text) in _read_csv_rows(path, (IMAGE_COLUMNS, ("label",))):
        try:
            label = int(label_text)
        except ValueError:
            raise ValueError(f"{path}:{line}: label {label_text!r} is not an integer class index") from None
        if label < 0 or (num_classes is not None and label >= num_classes):
            raise ValueError(f"{path}:{line}: label {label} outside [0, {num_classes})")
        paths.append(_resolve(image, image_root))
        labels.append(label)
    if not paths:
        raise ValueError(f"{path}: no rows")
    return ClassificationSet(FileImages(paths), np.asarray(labels, dtype=np.int64), source=path)


# ----------------------------------------------------------------------------- retrieval
def read_karpathy_json(path: str, image_root: str, split: str = "test") -> RetrievalSet:
    """Read one split of a Karpathy-split JSON (COCO 5k / Flickr30K 1k test images, ~5 captions each)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Karpathy JSON not found: {path}")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or "images" not in data:
        raise ValueError(f"{path}: expected an object with an 'images' list (Karpathy split format)")
    paths, captions, ids = [], [], []
    for n, entry in enumerate(data["images"]):
        if entry.get("split") != split:
            continue
        if "filename" not in entry or not entry.get("sentences"):
            raise ValueError(f"{path}: images[{n}] lacks 'filename' or 'sentences'")
        paths.append(os.path.join(image_root, entry.get("filepath", ""), entry["filename"]))
        for sentence in entry["sentences"]:
            captions.append(sentence["raw"].strip())
            ids.append(len(paths) - 1)
    if not paths:
        splits = sorted({str(e.get("split")) for e in data["images"]})
        raise ValueError(f"{path}: no images in split {split!r} (splits present: {splits})")
    return RetrievalSet(FileImages(paths), captions, np.asarray(ids, dtype=np.int64), source=path)


def read_retrieval_csv(path: str, image_root: Optional[str] = None) -> RetrievalSet:
    """Read a CSV with image and caption columns, one row per caption (several rows per image)."""
    image_root = os.path.dirname(os.path.abspath(path)) if image_root is None else image_root
    image_index, captions, ids = {}, [], []
    for line, (image, caption) in _read_csv_rows(path, (IMAGE_COLUMNS, CAPTION_COLUMNS)):
        caption = caption.strip()
        if not caption:
            raise ValueError(f"{path}:{line}: empty caption")
        ids.append(image_index.setdefault(image, len(image_index)))
        captions.append(caption)
    if not captions:
        raise ValueError(f"{path}: no rows")
    paths = [_resolve(p, image_root) for p in image_index]  # dicts keep first-seen order
    return RetrievalSet(FileImages(paths), captions, np.asarray(ids, dtype=np.int64), source=path)


# ----------------------------------------------------------------------------- demo held-out data
DEMO_LABELS = "val_labels.tsv"  # filepath, label, classname (relative to the demo folder)
DEMO_CAPTIONS = "val_captions.json"  # Karpathy layout, split "test", 5 captions per image
DEMO_CLASSNAMES = "classnames.txt"  # one class name per line, in label order
DEMO_TEMPLATES = "templates.txt"  # one prompt template per line


def is_demo_folder(root: str) -> bool:
    """True when `root` holds the held-out files written by `mindclip.data.demo.make_demo_data`."""
    return os.path.isfile(os.path.join(root, DEMO_LABELS)) or os.path.isfile(os.path.join(root, DEMO_CAPTIONS))


def read_demo_classification(root: str) -> ClassificationSet:
    """The demo's held-out images and labels (`root/val_labels.tsv`)."""
    return read_classification_csv(os.path.join(root, DEMO_LABELS), image_root=root)


def read_demo_retrieval(root: str) -> RetrievalSet:
    """The demo's held-out images with five captions each (`root/val_captions.json`)."""
    return read_karpathy_json(os.path.join(root, DEMO_CAPTIONS), image_root=root, split="test")
