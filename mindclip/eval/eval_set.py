"""Choosing how to read an evaluation set, and which class each image is: one function for every tool.

    eval_set = load_eval_set("zeroshot", "/data/pets/test", classnames_file="pets.txt")
    eval_set.data, eval_set.prompts.classnames, eval_set.class_order, eval_set.notes

`tools/eval.py` and `tools/visualize.py embed` both read their sets here. Layouts (`LAYOUTS`):
``demo`` (the demo's held-out files), ``imagefolder`` (``root/<class folder>/<image>``), ``cifar``
(CIFAR-10/100 python batches), ``csv`` (a CSV/TSV of image paths with label indices, or with
captions for retrieval), ``karpathy`` (a Karpathy-split JSON, retrieval). ``auto`` picks one from
the dataset name, the task and the root (`resolve_layout`).

The classes of an ImageFolder (`class_folders`):
- a class list that names the folders (ImageNet's WordNet ids, `folder_names`) maps by those;
- without any class names (no class-name file and no shipped list), the sorted folder names are
  the classes and their names;
- class names that equal the folder names as a set (ignoring case, ``_`` against a space, and any
  synonym) map by name, whatever their order; a different order is reported in `notes`;
- class names that share no name with the folders map by position, reported in `notes`: folders
  named ``0`` .. ``C-1`` are class indices; otherwise class i is the i-th folder in sorted order
  (torchvision's convention);
- a different count, or names that match only some folders, is refused: either would give labels
  that silently disagree with the class names.
"""
import dataclasses
import os
from typing import List, Optional

from mindclip.eval import datasets
from mindclip.eval.prompts import (DEFAULT_TEMPLATES, ZeroShotPrompts, list_zero_shot_datasets, load_prompts_file,
                                   load_templates_file, load_zero_shot_prompts)

LAYOUTS = ("auto", "demo", "imagefolder", "cifar", "csv", "karpathy")
CLASSIFICATION_LAYOUTS = ("demo", "imagefolder", "cifar", "csv")
RETRIEVAL_LAYOUTS = ("demo", "karpathy", "csv")
TASKS = ("zeroshot", "retrieval")


@dataclasses.dataclass
class EvalSet:
    """An evaluation set as read, with what a result file should record about it."""

    task: str
    layout: str
    data: object  # ClassificationSet or RetrievalSet
    prompts: Optional[ZeroShotPrompts] = None  # zeroshot only: class names (label order) and templates
    class_order: str = ""  # how labels were given to images (zeroshot)
    notes: List[str] = dataclasses.field(default_factory=list)  # what the user should be told

    @property
    def classnames(self):
        """The first name of every class, in label order (zeroshot)."""
        return [c if isinstance(c, str) else c[0] for c in self.prompts.classnames]


def resolve_layout(task, root, dataset=None, layout="auto", annotations=None):
    """The reader for `root`: `layout` itself, or for ``auto`` demo for the dataset "demo", karpathy
    (with `annotations`) or csv for retrieval, cifar for cifar10/100, csv for a .csv/.tsv root, else
    imagefolder."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    allowed = CLASSIFICATION_LAYOUTS if task == "zeroshot" else RETRIEVAL_LAYOUTS
    if layout != "auto":
        if layout not in allowed:
            raise ValueError(f"layout {layout!r} cannot be read for {task} (layouts: {', '.join(allowed)})")
        return layout
    if dataset == "demo":
        return "demo"
    if task == "retrieval":
        return "karpathy" if annotations else "csv"
    if dataset in ("cifar10", "cifar100"):
        return "cifar"
    return "csv" if str(root).lower().endswith((".csv", ".tsv")) else "imagefolder"


def load_eval_set(task, root, dataset=None, layout="auto", annotations=None, split="test",
                  classnames_file=None, templates_file=None) -> EvalSet:
    """Read an evaluation set (module docstring) with its class names and templates for zero-shot.

    Args:
        task: "zeroshot" (classification) or "retrieval".
        root: the demo folder, an ImageFolder root, a CIFAR folder, or a CSV/TSV file; for
            ``karpathy`` the folder the image paths are relative to.
        dataset: "demo", a shipped prompt set (`list_zero_shot_datasets()`), or any name.
        annotations: the Karpathy-split JSON (retrieval).
        classnames_file, templates_file: class names / templates from files instead of the shipped ones.
    """
    layout = resolve_layout(task, root, dataset, layout, annotations)
    if task == "retrieval":
        return EvalSet(task, layout, _read_retrieval(root, layout, annotations, split))
    prompts = _class_prompts(root, dataset, classnames_file, templates_file)
    if layout == "imagefolder":
        source = classnames_file or f"the class names of dataset {dataset!r}"
        return _read_image_folder(root, prompts, templates_file, source)
    if prompts is None:
        raise ValueError(f"no class names for {root} (layout {layout}): give a class-name file (--classnames) "
                         f"or a dataset with shipped class names ({', '.join(list_zero_shot_datasets())})")
    if layout == "demo":
        data, order = datasets.read_demo_classification(root), f"label column of {datasets.DEMO_LABELS}"
    elif layout == "cifar":
        if dataset not in ("cifar10", "cifar100"):
            raise ValueError(f"layout cifar needs the dataset cifar10 or cifar100, got {dataset!r}")
        data, order = datasets.read_cifar(root, dataset, split), "CIFAR label ids"
    else:
        data = datasets.read_classification_csv(root, num_classes=len(prompts.classnames))
        order = "label column of the CSV"
    return EvalSet(task, layout, data, prompts, class_order=order)


def _read_retrieval(root, layout, annotations, split):
    if layout == "demo":
        return datasets.read_demo_retrieval(root)
    if layout == "karpathy":
        if not annotations:
            raise ValueError("layout karpathy needs the annotations file (dataset_coco.json / dataset_flickr30k.json)")
        return datasets.read_karpathy_json(annotations, root, split)
    return datasets.read_retrieval_csv(root)


def _class_prompts(root, dataset, classnames_file, templates_file):
    """Class names and templates: a class-name file, the demo's files, a shipped list, or None."""
    if classnames_file:
        return load_prompts_file(classnames_file, templates_file)
    if dataset == "demo":
        prompts = load_prompts_file(os.path.join(root, datasets.DEMO_CLASSNAMES),
                                    templates_file or os.path.join(root, datasets.DEMO_TEMPLATES))
        prompts.name = "demo"
        return prompts
    if dataset not in list_zero_shot_datasets():
        return None
    prompts = load_zero_shot_prompts(dataset)
    if templates_file:
        prompts.templates = load_templates_file(templates_file)
    return prompts


def _read_image_folder(root, prompts, templates_file, source):
    folders = datasets.list_class_folders(root)
    if prompts is None:
        templates = load_templates_file(templates_file) if templates_file else list(DEFAULT_TEMPLATES)
        prompts = ZeroShotPrompts(os.path.basename(os.path.normpath(root)), list(folders), templates)
        data = datasets.read_image_folder(root, folders)
        note = f"class names are the {len(folders)} folder names of {root} (no class-name list given)"
        return EvalSet("zeroshot", "imagefolder", data, prompts, class_order="sorted folder names", notes=[note])
    folder_names, order, notes = class_folders(folders, prompts, root, source)
    data = datasets.read_image_folder(root, folder_names)
    return EvalSet("zeroshot", "imagefolder", data, prompts, class_order=order, notes=notes)


def _name_key(name):
    """Folder and class names compared ignoring case, '_' against ' ', and repeated spaces."""
    return " ".join(str(name).replace("_", " ").split()).lower()


def class_folders(folders, prompts, root="ImageFolder", source=None):
    """(folder of each class index, how it was decided, notes) for the sorted `folders` of `root`;
    `source` names where the class names come from in messages (default: `prompts.name`)."""
    source = source or prompts.name
    if prompts.folder_names is not None:
        if len(prompts.folder_names) != len(prompts.classnames):
            raise ValueError(f"{source}: {len(prompts.folder_names)} folder_names for {len(prompts.classnames)} classes")
        return list(prompts.folder_names), f"folder_names of {source}", []
    if len(folders) != len(prompts.classnames):
        raise ValueError(f"{root} has {len(folders)} class folders but {source} lists {len(prompts.classnames)} "
                         f"class names: refusing to guess which folder is which class")
    keys = [{_name_key(n) for n in ([c] if isinstance(c, str) else c)} for c in prompts.classnames]
    matches = [[i for i, names in enumerate(keys) if _name_key(folder) in names] for folder in folders]
    if not any(matches):
        return _folders_by_position(folders, prompts, root, source)
    by_class = {m[0]: folder for folder, m in zip(folders, matches) if len(m) == 1}
    if len(by_class) != len(folders) or any(len(m) != 1 for m in matches):
        unmatched = [f for f, m in zip(folders, matches) if len(m) != 1]
        missing = [_first(c) for i, c in enumerate(prompts.classnames) if i not in by_class]
        raise ValueError(f"{root}: the folder names match the class names of {source} only in part (folders "
                         f"without exactly one class: {unmatched[:5]}; classes without a folder: {missing[:5]}): "
                         f"rename the folders or list the class names in sorted folder order")
    folder_names = [by_class[i] for i in range(len(folders))]
    if folder_names == list(folders):
        return folder_names, "folder names equal the class names, same order", []
    moved = sum(a != b for a, b in zip(folder_names, folders))
    note = (f"the class names of {source} are the folder names of {root} in another order: "
            f"matched by name ({moved} of {len(folders)} classes are not at their sorted folder position)")
    return folder_names, "matched by folder name", [note]


def _folders_by_position(folders, prompts, root, source):
    """Folders named 0..C-1 are class indices; other names go by sorted position (torchvision)."""
    numbers = [str(i) for i in range(len(folders))]
    if sorted(folders) == sorted(numbers):
        note = f"the folders of {root} are named by class index: folder 'i' is class i of {source}"
        return numbers, "folder name = class index", [note]
    note = (f"the folder names of {root} are not the class names of {source}: class i is the i-th folder "
            f"in sorted order ({folders[0]!r} is {_first(prompts.classnames[0])!r}, "
            f"{folders[-1]!r} is {_first(prompts.classnames[-1])!r})")
    return list(folders), "sorted folder position", [note]


def _first(classname):
    return classname if isinstance(classname, str) else classname[0]
