"""mindclip.eval.load_eval_set: one reader for tools/eval.py and viz; ImageFolder class order.

The ImageFolder trees here hold solid-colour images whose colour is their class: every label is
checked against the pixels (an independent check of the label mapping, not of the code's own view).
"""
import os
import random

import numpy as np
import pytest
from PIL import Image

from mindclip.eval.eval_set import class_folders, load_eval_set, resolve_layout
from mindclip.eval.prompts import ZeroShotPrompts

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 210), "dark_yellow": (150, 140, 10)}


def colour_name(image):
    """The COLOURS entry nearest to the image's mean colour, as a class name ('dark yellow')."""
    mean = np.asarray(image, dtype=np.float32).reshape(-1, 3).mean(axis=0)
    name = min(COLOURS, key=lambda n: np.abs(mean - COLOURS[n]).sum())
    return name.replace("_", " ")


@pytest.fixture
def colour_folder(tmp_path):
    root = tmp_path / "val"
    for name, colour in COLOURS.items():
        os.makedirs(root / name)
        for i in range(2):
            Image.new("RGB", (12, 10), colour).save(root / name / f"{i}.png")
    return str(root)


def write_names(tmp_path, names, file_name="names.txt"):
    path = tmp_path / file_name
    path.write_text("\n".join(names) + "\n")
    return str(path)


def check_labels_follow_pixels(eval_set):
    names = eval_set.classnames
    assert len(eval_set.data) == 8
    for i, label in enumerate(eval_set.data.labels):
        assert names[label].lower().replace("_", " ") == colour_name(eval_set.data.images[i])


def test_without_class_names_the_folder_names_are_the_classes(colour_folder, tmp_path):
    eval_set = load_eval_set("zeroshot", colour_folder, dataset="my_colours")
    assert eval_set.layout == "imagefolder" and eval_set.classnames == sorted(COLOURS)
    assert eval_set.prompts.templates == ["a photo of a {}."] and "folder names" in eval_set.notes[0]
    check_labels_follow_pixels(eval_set)
    templates = write_names(tmp_path, ["a {} thing.", "the colour {}"], "templates.txt")
    assert load_eval_set("zeroshot", colour_folder, templates_file=templates).prompts.templates == \
        ["a {} thing.", "the colour {}"]


def test_class_names_in_another_order_are_matched_by_name(colour_folder, tmp_path):
    names = ["Blue", "dark yellow", "RED", "green"]  # another order, case and '_' -> ' ' differ
    eval_set = load_eval_set("zeroshot", colour_folder, classnames_file=write_names(tmp_path, names))
    assert eval_set.classnames == names and eval_set.class_order == "matched by folder name"
    assert f"the class names of {tmp_path}/names.txt are the folder names of {colour_folder} in another order: " \
        "matched by name (2 of 4" in eval_set.notes[0]
    check_labels_follow_pixels(eval_set)
    same_order = load_eval_set("zeroshot", colour_folder, classnames_file=write_names(tmp_path, sorted(COLOURS)))
    assert same_order.notes == [] and same_order.class_order == "folder names equal the class names, same order"
    check_labels_follow_pixels(same_order)


def test_synonym_lists_match_folders_by_any_name(colour_folder, tmp_path):
    path = tmp_path / "names.json"
    path.write_text('[["crimson", "red"], ["azure", "blue"], ["olive", "dark_yellow"], ["lime", "green"]]')
    eval_set = load_eval_set("zeroshot", colour_folder, classnames_file=str(path))
    assert eval_set.class_order == "matched by folder name"
    for i, label in enumerate(eval_set.data.labels):  # the label's synonyms include the pixel colour
        assert colour_name(eval_set.data.images[i]) in [n.replace("_", " ") for n in eval_set.prompts.classnames[label]]


@pytest.mark.parametrize("names, says", [
    (["red", "green", "blue"], "has 4 class folders but .*names.txt lists 3 class names"),
    (["red", "green", "blue", "dark yellow", "white"], "has 4 class folders but .*names.txt lists 5"),
    (["red", "green", "blue", "purple"], r"only in part .*\['dark_yellow'\].*\['purple'\]"),
    (["red", "red", "blue", "dark yellow"], "only in part"),
])
def test_counts_or_names_that_disagree_are_refused(colour_folder, tmp_path, names, says):
    with pytest.raises(ValueError, match=says):
        load_eval_set("zeroshot", colour_folder, classnames_file=write_names(tmp_path, names))


def test_names_unrelated_to_the_folders_go_by_sorted_position(colour_folder, tmp_path):
    names = ["class a", "class b", "class c", "class d"]
    eval_set = load_eval_set("zeroshot", colour_folder, classnames_file=write_names(tmp_path, names))
    assert eval_set.class_order == "sorted folder position"
    assert "'blue' is 'class a', 'red' is 'class d'" in eval_set.notes[0]
    for i, label in enumerate(eval_set.data.labels):
        assert sorted(COLOURS)[label].replace("_", " ") == colour_name(eval_set.data.images[i])


def test_folders_named_by_class_index_map_numerically():
    folders = sorted(str(i) for i in range(12))  # "0", "1", "10", "11", "2", ...
    prompts = ZeroShotPrompts("twelve", [f"class {i}" for i in range(12)], ["{}"])
    folder_names, order, notes = class_folders(folders, prompts, "root")
    assert folder_names == [str(i) for i in range(12)] and order == "folder name = class index"
    assert "named by class index" in notes[0]


def test_shipped_folder_names_still_rule(tmp_path):
    prompts = ZeroShotPrompts("wnids", ["tench", "goldfish"], ["{}"], folder_names=["n01", "n02"])
    assert class_folders(["n02", "n01"], prompts)[0] == ["n01", "n02"]


def test_the_demo_and_label_csvs(tiny_demo, tmp_path):
    eval_set = load_eval_set("zeroshot", tiny_demo, dataset="demo")
    assert eval_set.layout == "demo" and len(eval_set.classnames) == 36 and len(eval_set.data) == 24
    for path, label in zip(eval_set.data.images.paths, eval_set.data.labels):  # folders "<colour>_<shape>"
        assert eval_set.classnames[label] == path.split("/")[-2].replace("_", " ")
    retrieval = load_eval_set("retrieval", tiny_demo, dataset="demo")
    assert retrieval.layout == "demo" and len(retrieval.data.captions) == 5 * 24
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("image,label\nx.jpg,0\ny.jpg,7\n")
    with pytest.raises(ValueError, match="label 7 outside"):
        load_eval_set("zeroshot", str(csv_path), classnames_file=write_names(tmp_path, ["a", "b"]))
    with pytest.raises(ValueError, match="no class names for .*labels.csv"):
        load_eval_set("zeroshot", str(csv_path))


@pytest.mark.parametrize("task, root, dataset, layout, annotations, expected", [
    ("zeroshot", "/d/val", None, "auto", None, "imagefolder"),
    ("zeroshot", "/d/pets.TSV", "pets", "auto", None, "csv"),
    ("zeroshot", "/d/cifar", "cifar100", "auto", None, "cifar"),
    ("zeroshot", "/d/x", "demo", "auto", None, "demo"),
    ("retrieval", "/d/coco", "coco", "auto", "/d/dataset_coco.json", "karpathy"),
    ("retrieval", "/d/pairs.csv", "mine", "auto", None, "csv"),
    ("zeroshot", "/d/pairs.csv", "mine", "imagefolder", None, "imagefolder"),
])
def test_resolve_layout(task, root, dataset, layout, annotations, expected):
    assert resolve_layout(task, root, dataset, layout, annotations) == expected


def test_a_layout_of_the_other_task_is_refused():
    with pytest.raises(ValueError, match="layout 'karpathy' cannot be read for zeroshot"):
        resolve_layout("zeroshot", "/d", layout="karpathy")
    with pytest.raises(ValueError, match="layout 'cifar' cannot be read for retrieval"):
        resolve_layout("retrieval", "/d", layout="cifar")


def test_shuffled_file_order_never_changes_the_labels(colour_folder, tmp_path):
    """Every order of the class-name file gives every image the class its pixels show."""
    names = [n.replace("_", " ") for n in COLOURS]
    for seed in range(5):
        random.Random(seed).shuffle(names)
        check_labels_follow_pixels(load_eval_set("zeroshot", colour_folder,
                                                 classnames_file=write_names(tmp_path, names)))
