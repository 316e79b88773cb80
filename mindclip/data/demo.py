"""Built-in demo data: captioned synthetic shapes that a tiny CLIP learns in minutes on a CPU.

Each image holds one object: one of 6 shapes in one of 6 colours, small or large, on the left, in
the middle or on the right, over a noisy grey background. The class of an image is its
"colour shape" pair (36 classes). Captions come from templates ("a small red circle on the
left", "a photo of a blue square"). The images go through the same conversion path as real data
(`convert_files` on an open_clip CSV).

Files written under OUT (see docs/data.md, "Demo data"):

    images/train/000000.jpg ...          training images
    images/val/<colour>_<shape>/N.jpg    held-out images in ImageFolder layout (zero-shot)
    train.csv, val.csv                   open_clip CSV (tab-separated): filepath, title, summary
                                         (+ roi with `pyramid=True`), one caption per image
    val_captions.json                    Karpathy-split JSON of the val images, 5 captions each,
                                         split "test" (retrieval)
    classnames.txt                       the 36 class names in label order ("blue circle")
    templates.txt                        zero-shot prompt templates, one per line, "{}" = class
    val_labels.tsv                       filepath, label, class name of every val image
    roi/{train,val}/N.npy                with `pyramid=True`: (1, 2052) float32 ROI features
    mindrecord/{train,val}-00000.mindrecord(.db), -report.tsv, -summary.json
"""
import csv
import json
import os
import re

import numpy as np
from PIL import Image, ImageDraw

from mindclip.data.convert import convert_files
from mindclip.data.sources import SourceOptions
from mindclip.data.validate import ROI_DIM, RecordOptions

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "star")
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
          "yellow": (230, 210, 40), "purple": (150, 60, 190), "orange": (245, 140, 30)}
SIZES = {"small": (0.19, 0.23), "large": (0.30, 0.35)}  # radius as a fraction of the side
POSITIONS = {"left": 0.36, "middle": 0.5, "right": 0.64}  # x of the centre as a fraction
WHERE = {"left": "on the left", "middle": "in the middle", "right": "on the right"}
CAPTION_TEMPLATES = (
    "a {size} {color} {shape} {where}",
    "a photo of a {color} {shape}",
    "a {color} {shape} {where}",
    "a picture of a {size} {shape} that is {color}",
    "there is a {color} {shape} {where}",
    "a {size} {color} {shape}",
    "a {shape} in {color}, {where}",
)
ZERO_SHOT_TEMPLATES = ("a photo of a {}.", "a {}.", "a picture of a {}.", "there is a {}.")
N_RETRIEVAL_CAPTIONS = 5


def class_names():
    """The 36 "colour shape" names in label order (sorted like their ImageFolder directories)."""
    return sorted(f"{color} {shape}" for color in COLORS for shape in SHAPES)


def _polygon(shape, cx, cy, r):
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)]
    if shape == "cross":
        w = r * 0.38
        return [(cx - w, cy - r), (cx + w, cy - r), (cx + w, cy - w), (cx + r, cy - w), (cx + r, cy + w),
                (cx + w, cy + w), (cx + w, cy + r), (cx - w, cy + r), (cx - w, cy + w), (cx - r, cy + w),
                (cx - r, cy - w), (cx - w, cy - w)]
    if shape == "star":
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        return list(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles)))
    raise ValueError(f"unknown shape {shape!r}")


def draw_object(attributes, image_size, rng):
    """One RGB image (`PIL.Image`) of the object described by `attributes`."""
    scale = 2  # draw at twice the size, then downsample: smooth edges
    side = image_size * scale
    grey = rng.uniform(150, 235)
    background = np.clip(grey + rng.normal(0, 10, (side, side, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(background)
    r = rng.uniform(*SIZES[attributes["size"]]) * side
    cx = (POSITIONS[attributes["position"]] + rng.uniform(-0.04, 0.04)) * side
    cy = rng.uniform(r + 1, side - r - 1)
    color = tuple(int(np.clip(c + rng.normal(0, 12), 0, 255)) for c in COLORS[attributes["color"]])
    draw = ImageDraw.Draw(image)
    if attributes["shape"] == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    else:
        draw.polygon(_polygon(attributes["shape"], cx, cy, r), fill=color)
    box = (cx - r, cy - r, cx + r, cy + r)
    attributes["box"] = [float(np.clip(v / side, 0, 1)) for v in box]  # x0, y0, x1, y1 in [0, 1]
    return image.resize((image_size, image_size), Image.BILINEAR)


def captions_for(attributes, rng, n):
    """`n` different captions of an object, templates chosen without replacement."""
    words = {"size": attributes["size"], "color": attributes["color"], "shape": attributes["shape"],
             "where": WHERE[attributes["position"]]}
    chosen = rng.choice(len(CAPTION_TEMPLATES), size=n, replace=False)
    return [re.sub(r"\ba (?=[aeiou])", "an ", CAPTION_TEMPLATES[i].format(**words)) for i in chosen]


def random_attributes(rng):
    return {"shape": SHAPES[rng.integers(len(SHAPES))], "color": list(COLORS)[rng.integers(len(COLORS))],
            "size": list(SIZES)[rng.integers(len(SIZES))], "position": list(POSITIONS)[rng.integers(len(POSITIONS))]}


def roi_features(attributes, projection, rng):
    """A (1, 2052) stand-in for detector features: projected one-hot shape/colour + noise, then the box."""
    onehot = np.zeros(len(SHAPES) + len(COLORS), np.float32)
    onehot[SHAPES.index(attributes["shape"])] = 1
    onehot[len(SHAPES) + list(COLORS).index(attributes["color"])] = 1
    feature = onehot @ projection + rng.normal(0, 0.1, projection.shape[1]).astype(np.float32)
    return np.concatenate([feature, attributes["box"]]).astype(np.float32)[None]


def _write_split(out_dir, split, n, image_size, rng, projection):
    """Draw `n` images of one split; return one row per image."""
    rows = []
    for index in range(n):
        attributes = random_attributes(rng)
        image = draw_object(attributes, image_size, rng)
        name = f"{attributes['color']}_{attributes['shape']}/{index:06d}.jpg" if split == "val" else f"{index:06d}.jpg"
        path = os.path.join("images", split, name)
        os.makedirs(os.path.dirname(os.path.join(out_dir, path)), exist_ok=True)
        image.save(os.path.join(out_dir, path), quality=95)
        captions = captions_for(attributes, rng, N_RETRIEVAL_CAPTIONS)
        row = dict(attributes, filepath=path, captions=captions,
                   label=class_names().index(f"{attributes['color']} {attributes['shape']}"))
        if projection is not None:
            row["roi"] = os.path.join("roi", split, f"{index:06d}.npy")
            os.makedirs(os.path.dirname(os.path.join(out_dir, row["roi"])), exist_ok=True)
            np.save(os.path.join(out_dir, row["roi"]), roi_features(attributes, projection, rng))
        rows.append(row)
    return rows


def _write_csv(path, rows, pyramid):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["filepath", "title", "summary"] + (["roi"] if pyramid else []))
        for row in rows:
            summary = f"{row['color']} {row['shape']}"
            writer.writerow([row["filepath"], row["captions"][0], summary] + ([row["roi"]] if pyramid else []))


def _write_eval_files(out_dir, val_rows):
    names = class_names()
    with open(os.path.join(out_dir, "classnames.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(names) + "\n")
    with open(os.path.join(out_dir, "templates.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(ZERO_SHOT_TEMPLATES) + "\n")
    with open(os.path.join(out_dir, "val_labels.tsv"), "w", encoding="utf-8") as f:
        f.write("filepath\tlabel\tclassname\n")
        for row in val_rows:
            f.write(f"{row['filepath']}\t{row['label']}\t{names[row['label']]}\n")
    karpathy = {"dataset": "mindclip-demo", "images": [
        {"filepath": os.path.dirname(row["filepath"]), "filename": os.path.basename(row["filepath"]),
         "imgid": i, "split": "test", "sentences": [{"raw": c} for c in row["captions"]]}
        for i, row in enumerate(val_rows)]}
    with open(os.path.join(out_dir, "val_captions.json"), "w", encoding="utf-8") as f:
        json.dump(karpathy, f)


def make_demo_data(out_dir, n_train=2000, n_val=300, image_size=64, seed=0, pyramid=False, log=print):
    """Write the demo data set (module doc) and convert it; returns {split: ConversionSummary}."""
    rng = np.random.default_rng(seed)
    projection = rng.normal(0, 1, (len(SHAPES) + len(COLORS), ROI_DIM - 4)).astype(np.float32) if pyramid else None
    os.makedirs(out_dir, exist_ok=True)
    splits = {"train": _write_split(out_dir, "train", n_train, image_size, rng, projection),
              "val": _write_split(out_dir, "val", n_val, image_size, rng, projection)}
    _write_eval_files(out_dir, splits["val"])
    record_options = RecordOptions(with_summary=pyramid, with_roi=pyramid)
    source_options = SourceOptions(summary_key="summary" if pyramid else None, roi_key="roi" if pyramid else None)
    summaries = {}
    for split, rows in splits.items():
        csv_path = os.path.join(out_dir, f"{split}.csv")
        _write_csv(csv_path, rows, pyramid)
        summaries[split] = convert_files(csv_path, os.path.join(out_dir, "mindrecord"), prefix=split,
                                         fmt="csv", source_options=source_options, record_options=record_options,
                                         progress_every_s=None, overwrite=True, log=log)
    return summaries
