"""Demo data: deterministic, captions agree with the pixels, eval files consistent, PyramidCLIP-ready."""
import csv
import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from mindclip.data.demo import COLORS, N_RETRIEVAL_CAPTIONS, SHAPES, class_names, make_demo_data
from mindclip.data.pipeline import DataConfig, create_dataset
from tool_loader import load_tool


def _digest(folder):
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            if name.endswith((".jpg", ".csv", ".json", ".txt", ".tsv", ".npy")) and "summary" not in name:
                with open(os.path.join(root, name), "rb") as f:
                    h.update(name.encode() + f.read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("demo"))
    summaries = make_demo_data(folder, n_train=40, n_val=12, image_size=32, seed=3, pyramid=True, log=None)
    return folder, summaries


def test_demo_is_deterministic_and_goes_through_conversion(demo, tmp_path):
    folder, summaries = demo
    assert summaries["train"].written == 40 and summaries["val"].written == 12
    assert summaries["train"].total_skipped == 0
    again = str(tmp_path / "again")
    make_demo_data(again, n_train=40, n_val=12, image_size=32, seed=3, pyramid=True, log=None)
    assert _digest(folder) == _digest(again)
    other = str(tmp_path / "other")
    make_demo_data(other, n_train=40, n_val=12, image_size=32, seed=4, pyramid=True, log=None)
    assert _digest(folder) != _digest(other)


def test_captions_and_labels_describe_the_pixels(demo):
    folder, _ = demo
    names = class_names()
    assert len(names) == len(SHAPES) * len(COLORS) == 36
    with open(os.path.join(folder, "classnames.txt"), encoding="utf-8") as f:
        assert f.read().splitlines() == names
    with open(os.path.join(folder, "val_labels.tsv"), encoding="utf-8") as f:
        labels = list(csv.DictReader(f, delimiter="\t"))
    assert len(labels) == 12
    for row in labels:
        color, shape = row["classname"].split()
        assert names[int(row["label"])] == row["classname"]
        assert os.path.basename(os.path.dirname(row["filepath"])) == f"{color}_{shape}"  # ImageFolder layout
        pixels = np.asarray(Image.open(os.path.join(folder, row["filepath"])), np.float32).reshape(-1, 3)
        saturated = pixels[pixels.max(1) - pixels.min(1) > 60]  # the object; the background is grey
        nearest = min(COLORS, key=lambda c: np.abs(saturated.mean(0) - COLORS[c]).sum())
        assert nearest == color
    with open(os.path.join(folder, "val_captions.json"), encoding="utf-8") as f:
        karpathy = json.load(f)
    for image, row in zip(karpathy["images"], labels):
        assert os.path.join(image["filepath"], image["filename"]) == row["filepath"]
        assert len(image["sentences"]) == N_RETRIEVAL_CAPTIONS
        assert len({s["raw"] for s in image["sentences"]}) == N_RETRIEVAL_CAPTIONS
        assert all(row["classname"].split()[1] in s["raw"] for s in image["sentences"])


def test_demo_shards_feed_a_pyramidclip_batch(demo):
    folder, _ = demo
    cfg = DataConfig(train_shards=os.path.join(folder, "mindrecord", "train-*.mindrecord"), batch_size=8,
                     image_size=32, method="pyramidclip", num_workers=1)
    batch = next(create_dataset(cfg).create_dict_iterator(num_epochs=1, output_numpy=True))
    assert batch["image_global"].shape == (8, 3, 32, 32)
    assert (batch["roi_count"] == 1).all() and batch["roi"].shape == (8, 10, 2052)
    assert (batch["summary_tokens"] > 0).sum(1).min() >= 4  # SOT, colour, shape, EOT


def test_make_demo_data_cli(tmp_path):

    tool = load_tool("make_demo_data")
    summaries = tool.main(["--out", str(tmp_path), "--n-train", "8", "--n-val", "4", "--image-size", "32"])
    assert summaries["train"].written == 8 and summaries["val"].written == 4
    assert sorted(os.listdir(tmp_path / "images" / "train")) == [f"{i:06d}.jpg" for i in range(8)]
