"""Class names and prompt templates shipped in `mindclip/eval/data/<dataset>.json`.

Each file holds `classnames` (a name, or a list of synonyms, per class index), `templates`
(strings with one `{}`), `label_order` (which dataset label ids the class indices follow),
`sources` (repository, path and commit of the published lists) and, for ImageNet,
`folder_names` (the sorted WordNet ids that name the validation folders). See data/README.md.
"""
import dataclasses
import json
import os
import string
from typing import List, Optional, Sequence, Union

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

ClassName = Union[str, Sequence[str]]  # one name, or several synonyms whose prompts are averaged


@dataclasses.dataclass
class ZeroShotPrompts:
    """What a zero-shot classifier needs for one dataset."""

    name: str
    classnames: List[ClassName]
    templates: List[str]
    folder_names: Optional[List[str]] = None  # ImageFolder folder of each class index, when fixed


def list_zero_shot_datasets() -> List[str]:
    """Names of the datasets that have shipped class names and templates."""
    return sorted(f[:-5] for f in os.listdir(DATA_DIR) if f.endswith(".json"))


def is_template(template) -> bool:
    """True for a string whose only replacement field is one bare `{}` (`template.format(name)` puts
    the name there and nowhere else; literal braces are written `{{` and `}}`)."""
    if not isinstance(template, str):
        return False
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                  if name is not None]
    except ValueError:  # a lone '{' or '}'
        return False
    return fields == [("", "", None)]


def check_prompts(classnames, templates, source="prompts"):
    """Refuse empty lists, templates without exactly one bare `{}` (`is_template`), and empty class names."""
    if not classnames:
        raise ValueError(f"{source}: no class names")
    if not templates:
        raise ValueError(f"{source}: no templates")
    for i, template in enumerate(templates):
        if not is_template(template):
            raise ValueError(f"{source}: template {i} ({template!r}) must contain exactly one '{{}}' "
                             f"and no other replacement field")
    for i, name in enumerate(classnames):
        names = [name] if isinstance(name, str) else list(name)
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValueError(f"{source}: class {i} has an empty or non-string name: {name!r}")


def load_zero_shot_prompts(name: str) -> ZeroShotPrompts:
    """Load the shipped class names and templates of dataset `name` (see `list_zero_shot_datasets`)."""
    path = os.path.join(DATA_DIR, f"{name}.json")
    if not os.path.isfile(path):
        raise ValueError(f"no zero-shot prompts for dataset {name!r}; available: {list_zero_shot_datasets()}")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    check_prompts(data["classnames"], data["templates"], source=path)
    return ZeroShotPrompts(name, data["classnames"], data["templates"], data.get("folder_names"))


def _read_list(path):
    """A list from a JSON file, or the non-empty lines of a text file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"file not found: {path}")
    with open(path, encoding="utf-8") as f:
        if not path.lower().endswith(".json"):
            return [line.strip() for line in f if line.strip()]
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: invalid JSON: {e}") from e


DEFAULT_TEMPLATES = ("a photo of a {}.",)


def load_templates_file(path: str) -> List[str]:
    """Templates from a text file (one per line) or a JSON list, each with exactly one `{}`."""
    templates = _read_list(path)
    if not isinstance(templates, list):
        raise ValueError(f"{path}: expected a list of templates")
    check_prompts(["x"], templates, source=path)
    return templates


def load_prompts_file(classnames_path: str, templates_path: Optional[str] = None) -> ZeroShotPrompts:
    """Custom prompts from files.

    `classnames_path`: a text file with one class name per line (label order), a JSON list of names
    (or of synonym lists), or a JSON object with `classnames` and optionally `templates` and
    `folder_names` (the layout of the shipped files). `templates_path`: a text file with one
    template per line, or a JSON list; it replaces any templates of the class-name file. Without
    any templates, `DEFAULT_TEMPLATES` is used.
    """
    data = _read_list(classnames_path)
    if isinstance(data, list):
        data = {"classnames": data}
    if not isinstance(data, dict) or "classnames" not in data:
        raise ValueError(f"{classnames_path}: expected a list of class names or an object with 'classnames'")
    templates = data.get("templates", list(DEFAULT_TEMPLATES))
    if templates_path is not None:
        templates = load_templates_file(templates_path)
    source = classnames_path if templates_path is None else f"{classnames_path} + {templates_path}"
    check_prompts(data["classnames"], templates, source=source)
    name = os.path.splitext(os.path.basename(classnames_path))[0]
    return ZeroShotPrompts(name, list(data["classnames"]), list(templates), data.get("folder_names"))
