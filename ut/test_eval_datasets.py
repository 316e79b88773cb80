"""Readers of mindclip.eval.datasets on small real files in each layout, and the shipped prompts."""
import csv
import json
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from mindclip.eval import datasets, prompts

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 210)}


def write_jpeg(path, colour, size=(20, 14)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, colour).save(path, format="JPEG", quality=95)


def mean_colour(image):
    return np.asarray(image, dtype=np.float32).reshape(-1, 3).mean(axis=0)


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "val"
    for name, colour in COLOURS.items():
        for i in range(2):
            write_jpeg(str(root / name / f"img_{i}.JPEG"), colour)
    (root / "green" / "notes.txt").write_text("not an image")
    return str(root)


def test_image_folder_sorted_and_mapped(image_folder):
    plain = datasets.read_image_folder(image_folder)
    np.testing.assert_array_equal(plain.labels, [0, 0, 1, 1, 2, 2])  # blue, green, red
    assert [os.path.basename(os.path.dirname(p)) for p in plain.images.paths] == ["blue"] * 2 + ["green"] * 2 + ["red"] * 2

    mapped = datasets.read_image_folder(image_folder, folder_names=["red", "violet", "green", "blue"])
    np.testing.assert_array_equal(mapped.labels, [3, 3, 2, 2, 0, 0])
    first_red = mapped.images[int(np.flatnonzero(mapped.labels == 0)[0])]
    assert first_red.mode == "RGB" and first_red.size == (20, 14)
    np.testing.assert_allclose(mean_colour(first_red), COLOURS["red"], atol=4)


def test_image_folder_refuses_unknown_folders(image_folder):
    with pytest.raises(ValueError, match=r"folders \['blue'\] are not among"):
        datasets.read_image_folder(image_folder, folder_names=["red", "green"])


def test_imagenet_wnids_give_the_standard_indices(tmp_path):
    wnids = prompts.load_zero_shot_prompts("imagenet1k").folder_names
    assert len(wnids) == 1000 == len(set(wnids)) and wnids == sorted(wnids)
    assert wnids[0] == "n01440764" and wnids[-1] == "n15075141"  # tench ... toilet tissue
    for wnid in (wnids[999], wnids[0], wnids[417]):
        write_jpeg(str(tmp_path / wnid / f"ILSVRC2012_val_{wnid}.JPEG"), (128, 128, 128))
    got = datasets.read_image_folder(str(tmp_path), folder_names=wnids)
    np.testing.assert_array_equal(got.labels, [0, 417, 999])


def write_cifar_batch(path, pixels_nhwc, labels, label_key):
    """A batch in the format of the official pickles: bytes keys, (N, 3072) rows in CHW order."""
    batch = {b"batch_label": b"testing batch 1 of 1",
             b"data": pixels_nhwc.transpose(0, 3, 1, 2).reshape(len(labels), -1),
             label_key: list(labels),
             b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


@pytest.mark.parametrize("name, folder, file_name, label_key", [
    ("cifar10", "cifar-10-batches-py", "test_batch", b"labels"),
    ("cifar100", "cifar-100-python", "test", b"fine_labels"),
])
def test_cifar_batches(tmp_path, name, folder, file_name, label_key):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)
    labels = [3, 0, 9, 1, 3]
    write_cifar_batch(str(tmp_path / folder / file_name), pixels, labels, label_key)
    for root in (str(tmp_path), str(tmp_path / folder)):  # parent folder or the batches folder
        got = datasets.read_cifar(root, name=name, split="test")
        np.testing.assert_array_equal(got.labels, labels)
        assert len(got) == 5
        np.testing.assert_array_equal(np.asarray(got.images[2]), pixels[2])
    with pytest.raises(FileNotFoundError, match="data_batch_1|train"):
        datasets.read_cifar(str(tmp_path), name=name, split="train")


def test_classification_csv(tmp_path, image_folder):
    path = tmp_path / "labels.csv"
    path.write_text("image,label\nval/red/img_0.JPEG,2\nval/blue/img_1.JPEG,0\n")
    got = datasets.read_classification_csv(str(path), num_classes=3)
    np.testing.assert_array_equal(got.labels, [2, 0])
    np.testing.assert_allclose(mean_colour(got.images[1]), COLOURS["blue"], atol=4)

    path.write_text("image,label\nval/red/img_0.JPEG,2\nval/blue/img_1.JPEG,cat\n")
    with pytest.raises(ValueError, match=r"labels.csv:3: label 'cat' is not an integer"):
        datasets.read_classification_csv(str(path))
    path.write_text("image,label\nval/red/img_0.JPEG,3\n")
    with pytest.raises(ValueError, match=r"labels.csv:2: label 3 outside \[0, 3\)"):
        datasets.read_classification_csv(str(path), num_classes=3)
    path.write_text("file,label\nval/red/img_0.JPEG,2\n")
    with pytest.raises(ValueError, match=r"labels.csv:1: header \['file', 'label'\] has no column named image or"):
        datasets.read_classification_csv(str(path))

    tsv = tmp_path / "labels.tsv"  # tab-separated, open_clip's `filepath` column name
    tsv.write_text("filepath\tlabel\tclassname\nval/green/img_1.JPEG\t1\tgreen, bright\n")
    got = datasets.read_classification_csv(str(tsv))
    np.testing.assert_array_equal(got.labels, [1])
    assert got.images.paths == [str(tmp_path / "val" / "green" / "img_1.JPEG")]


def karpathy_entry(filename, split, captions, filepath=None):
    entry = {"filename": filename, "split": split, "imgid": 0,
             "sentences": [{"raw": c + " ", "tokens": c.lower().split()} for c in captions]}
    if filepath is not None:
        entry["filepath"] = filepath
    return entry


def test_karpathy_json_coco_and_flickr(tmp_path):
    caps = {name: [f"{name} caption {j}" for j in range(5)] for name in ("a", "b", "c", "d")}
    coco = {"dataset": "coco", "images": [
        karpathy_entry("a.jpg", "test", caps["a"], "val2014"),
        karpathy_entry("b.jpg", "train", caps["b"], "train2014"),
        karpathy_entry("c.jpg", "test", caps["c"], "val2014"),
        karpathy_entry("d.jpg", "restval", caps["d"], "val2014")]}
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps(coco))
    for name, colour in zip("ac", COLOURS.values()):
        write_jpeg(str(tmp_path / "images" / "val2014" / f"{name}.jpg"), colour)

    got = datasets.read_karpathy_json(str(path), str(tmp_path / "images"), split="test")
    assert got.images.paths == [str(tmp_path / "images" / "val2014" / "a.jpg"),
                                str(tmp_path / "images" / "val2014" / "c.jpg")]
    assert got.captions == caps["a"] + caps["c"]  # raw text, trailing space stripped
    np.testing.assert_array_equal(got.text_image_ids, [0] * 5 + [1] * 5)
    np.testing.assert_allclose(mean_colour(got.images[1]), COLOURS["green"], atol=4)

    flickr = {"dataset": "flickr30k", "images": [karpathy_entry("1000.jpg", "test", caps["d"])]}
    path.write_text(json.dumps(flickr))
    got = datasets.read_karpathy_json(str(path), "/data/flickr30k-images")
    assert got.images.paths == ["/data/flickr30k-images/1000.jpg"] and len(got.captions) == 5
    with pytest.raises(ValueError, match=r"no images in split 'val' \(splits present: \['test'\]\)"):
        datasets.read_karpathy_json(str(path), "/data", split="val")


def test_retrieval_csv_groups_rows_by_image(tmp_path):
    path = tmp_path / "captions.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "caption"])
        writer.writerows([["x.jpg", "a red square"], ["y.jpg", "a blue square"], ["x.jpg", "red, plain"],
                          ["z.jpg", "green"], ["y.jpg", "blue"]])
    got = datasets.read_retrieval_csv(str(path))
    assert got.images.paths == [str(tmp_path / n) for n in ("x.jpg", "y.jpg", "z.jpg")]
    assert got.captions == ["a red square", "a blue square", "red, plain", "green", "blue"]
    np.testing.assert_array_equal(got.text_image_ids, [0, 1, 0, 2, 1])


EXPECTED_CLASSES = {"imagenet1k": 1000, "pets": 37, "cifar10": 10, "cifar100": 100, "dtd": 47, "stl10": 10,
                    "food101": 101, "flowers102": 102, "fer2013": 7, "sun397": 397, "caltech101": 102}


def test_shipped_prompts_cover_the_paper_datasets():
    assert prompts.list_zero_shot_datasets() == sorted(EXPECTED_CLASSES)
    for name, num_classes in EXPECTED_CLASSES.items():
        data = prompts.load_zero_shot_prompts(name)
        assert len(data.classnames) == num_classes, name
        with open(os.path.join(prompts.DATA_DIR, f"{name}.json"), encoding="utf-8") as f:
            sources = json.load(f)["sources"]
        assert all(len(s["commit"]) == 40 for s in sources.values()), name
    imagenet = prompts.load_zero_shot_prompts("imagenet1k")
    assert len(imagenet.templates) == 80 and len(set(imagenet.templates)) == 80
    assert imagenet.classnames[0] == "tench" and imagenet.classnames[999] == "toilet paper"
    assert prompts.load_zero_shot_prompts("fer2013").classnames[3] == ["happy", "smiling"]


def test_demo_heldout_folder(tmp_path):
    """The files `mindclip.data.demo` writes for evaluation, in their layout."""
    from mindclip.data.demo import make_demo_data

    make_demo_data(str(tmp_path), n_train=4, n_val=6, image_size=32, seed=3, log=lambda *a, **k: None)
    assert datasets.is_demo_folder(str(tmp_path)) and not datasets.is_demo_folder(str(tmp_path / "images"))
    names = prompts.load_prompts_file(str(tmp_path / "classnames.txt"), str(tmp_path / "templates.txt"))
    assert len(names.classnames) == 36 and "{}" in names.templates[0]

    labelled = datasets.read_demo_classification(str(tmp_path))
    assert len(labelled) == 6
    for path, label in zip(labelled.images.paths, labelled.labels):  # images/val/<colour>_<shape>/N.jpg
        assert names.classnames[label] == os.path.basename(os.path.dirname(path)).replace("_", " ")
        assert os.path.isfile(path)
    captioned = datasets.read_demo_retrieval(str(tmp_path))
    assert captioned.images.paths == labelled.images.paths
    assert len(captioned.captions) == 30
    np.testing.assert_array_equal(captioned.text_image_ids, np.repeat(np.arange(6), 5))
    for caption, image_id in zip(captioned.captions, captioned.text_image_ids):
        colour, shape = names.classnames[labelled.labels[image_id]].split()
        assert shape in caption and colour in caption


def test_custom_prompts_file(tmp_path):
    path = tmp_path / "shapes.json"
    path.write_text(json.dumps(["circle", "square"]))
    got = prompts.load_prompts_file(str(path))
    assert got.classnames == ["circle", "square"] and got.templates == ["a photo of a {}."]
    path.write_text(json.dumps({"classnames": ["circle"], "templates": ["a {} and a {}"]}))
    with pytest.raises(ValueError, match="exactly one"):
        prompts.load_prompts_file(str(path))
    names, templates = tmp_path / "names.txt", tmp_path / "templates.txt"
    names.write_text("circle\n\nred square\n")
    templates.write_text("a {}.\nthere is a {}\n")
    got = prompts.load_prompts_file(str(names), str(templates))
    assert got.classnames == ["circle", "red square"] and got.templates == ["a {}.", "there is a {}"]


def test_label_and_caption_files_are_read_one_line_per_row(tmp_path):
    """An extra field or a runaway quote is refused naming the line, never cut or merged."""
    path = tmp_path / "pairs.csv"
    path.write_text('image,caption\na.jpg,"a ""quoted"" caption"\nb.jpg,plain\n')
    assert datasets.read_retrieval_csv(str(path)).captions == ['a "quoted" caption', "plain"]
    path.write_text('image,caption\na.jpg,"an open quote\nb.jpg,plain\nc.jpg,third\n')
    with pytest.raises(ValueError, match=r"pairs.csv:2: bad CSV quoting"):
        datasets.read_retrieval_csv(str(path))
    path.write_text("image,caption\na.jpg,one, with a comma\n")
    with pytest.raises(ValueError, match="pairs.csv:2: 3 fields where the header has 2"):
        datasets.read_retrieval_csv(str(path))
    tsv = tmp_path / "labels.tsv"
    tsv.write_text('filepath\tlabel\n"a.jpg\t1\nb.jpg\t0\textra\n')
    with pytest.raises(ValueError, match=r"labels.tsv:3: 3 fields"):  # line 2 is fine: no quoting in a TSV
        datasets.read_classification_csv(str(tsv), num_classes=2)
