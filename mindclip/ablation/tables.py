"""Ablation tables as data: a YAML file of rows, each a name plus config overrides of one recipe.

    table = load_table("lightclip-table4")          # a shipped table (list_tables())
    table = load_table("my_rows.yaml")              # or a file of your own, same format

The format (every key but `rows` optional; unknown keys are refused with the file and line):

    title: LightCLIP, Table 4                        # heading of the report
    source: Nie et al., 2023, Table 4                # where the rows come from
    recipe: ascend_configs/lightclip_mobilenetv2.yaml   # the recipe the rows were written for
    common: {train.epochs: 8}                        # overrides of every row
    components: [soft labels, token alignment, MLM]  # check-mark columns of the report
    rows:
      - id: clip                                     # run folder name (default: from the name)
        name: CLIP                                   # first row = the reference of every delta
        components: []                               # which check marks this row gets
        overrides: {method: lightclip, loss.r1: 1.0} # dotted config keys -> values (as --set)
        note: free text shown under the table

A row sets every key it changes from the recipe, so it means the same whatever the recipe's (or
the method's) defaults are.
"""
import dataclasses
import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

import yaml

from mindclip.config import ConfigError

TABLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tables")
TABLE_KEYS = ("name", "title", "source", "recipe", "common", "components", "rows")
ROW_KEYS = ("id", "name", "components", "overrides", "note")


@dataclasses.dataclass(frozen=True)
class AblationRow:
    """One row of a table: what it is called and the overrides that make it."""
    id: str
    name: str
    overrides: Dict[str, Any]  # dotted config key -> value
    components: Tuple[str, ...] = ()
    note: str = ""
    line: int = 0  # line of the row in its file (for messages)


@dataclasses.dataclass(frozen=True)
class AblationTable:
    """A named list of rows plus what every row shares."""
    name: str
    path: str
    rows: Tuple[AblationRow, ...]
    title: str = ""
    source: str = ""
    recipe: str = ""
    common: Dict[str, Any] = dataclasses.field(default_factory=dict)
    components: Tuple[str, ...] = ()

    def row(self, row_id):
        for row in self.rows:
            if row.id == row_id:
                return row
        raise KeyError(row_id)


class _Mapping(dict):
    """A YAML mapping that remembers its line and the line of each key."""
    line = 0
    key_lines: Dict[Any, int] = {}


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and records lines (1-based)."""


def _construct_mapping(loader, node, deep=False):
    mapping, lines = _Mapping(), {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in lines:
            raise ConfigError(f"{key_node.start_mark.name}:{key_node.start_mark.line + 1}: duplicate key {key!r} "
                              f"(first at line {lines[key]})")
        lines[key] = key_node.start_mark.line + 1
        mapping[key] = loader.construct_object(value_node, deep=True)
    mapping.line, mapping.key_lines = node.start_mark.line + 1, lines
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def list_tables():
    """Names of the tables shipped in the package."""
    return sorted(f[:-5] for f in os.listdir(TABLES_DIR) if f.endswith(".yaml"))


def table_path(name_or_path):
    """The file of a shipped table name, or the given path if it is a file."""
    if os.path.isfile(name_or_path):
        return name_or_path
    shipped = os.path.join(TABLES_DIR, f"{name_or_path}.yaml")
    if os.path.isfile(shipped):
        return shipped
    raise ConfigError(f"ablation table {name_or_path!r} is neither a file nor a shipped table "
                      f"({', '.join(list_tables())})")


def load_table(name_or_path):
    """Read and check a table (module doc); errors name the file, the line and the key."""
    path = table_path(name_or_path)
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.load(f, Loader=_LineLoader)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(data, _Mapping):
        raise ConfigError(f"{path}:1: an ablation table must be a mapping with a 'rows' list")
    _refuse_unknown(path, data, TABLE_KEYS, "table")
    components = tuple(_strings(path, data, "components"))
    if not isinstance(data.get("rows"), list) or not data["rows"]:
        raise ConfigError(f"{path}:{data.key_lines.get('rows', data.line)}: 'rows' must be a non-empty list of rows")
    rows = tuple(_row(path, item, components, data.key_lines["rows"]) for item in data["rows"])
    _refuse_duplicate_ids(path, rows)
    return AblationTable(
        name=str(data.get("name") or os.path.splitext(os.path.basename(path))[0]), path=os.path.abspath(path),
        rows=rows, title=str(data.get("title", "")), source=str(data.get("source", "")),
        recipe=str(data.get("recipe", "")), common=_overrides(path, data, "common"), components=components)


def _row(path, item, components, rows_line):
    if not isinstance(item, _Mapping):
        raise ConfigError(f"{path}:{rows_line}: every row must be a mapping with 'name' and 'overrides', got {item!r}")
    _refuse_unknown(path, item, ROW_KEYS, "row")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{path}:{item.line}: row lacks a 'name'")
    row_id = str(item.get("id") or slug(name))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", row_id):
        raise ConfigError(f"{path}:{item.key_lines.get('id', item.line)}: row id {row_id!r} must be letters, "
                          f"digits, '.', '_' or '-' (it names the run's folder)")
    marks = tuple(_strings(path, item, "components"))
    unknown = [m for m in marks if m not in components]
    if unknown:
        raise ConfigError(f"{path}:{item.key_lines['components']}: row {name!r} marks {unknown[0]!r}, "
                          f"not one of the table's components {list(components)}")
    if "overrides" not in item:
        raise ConfigError(f"{path}:{item.line}: row {name!r} lacks 'overrides' (write 'overrides: {{}}' for none)")
    return AblationRow(id=row_id, name=name, overrides=_overrides(path, item, "overrides"), components=marks,
                       note=str(item.get("note", "")), line=item.line)


def _overrides(path, mapping, key):
    value = mapping.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}:{mapping.key_lines.get(key, mapping.line)}: '{key}' must be a mapping of "
                          f"dotted config keys to values, got {value!r}")
    for dotted in value:
        if not isinstance(dotted, str) or not re.fullmatch(r"[A-Za-z_][\w.]*", dotted):
            raise ConfigError(f"{path}:{value.key_lines.get(dotted, mapping.line)}: '{key}' has a bad config key "
                              f"{dotted!r}")
    return dict(value)


def _strings(path, mapping, key):
    value = mapping.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}:{mapping.key_lines.get(key, mapping.line)}: '{key}' must be a list of names")
    return value


def _refuse_unknown(path, mapping, known, what):
    for key in mapping:
        if key not in known:
            raise ConfigError(f"{path}:{mapping.key_lines[key]}: unknown {what} key {key!r} "
                              f"(known: {', '.join(known)})")


def _refuse_duplicate_ids(path, rows):
    seen = {}
    for row in rows:
        if row.id in seen:
            raise ConfigError(f"{path}:{row.line}: row id {row.id!r} is used twice (first at line {seen[row.id]}); "
                              f"give the rows distinct 'id's")
        seen[row.id] = row.line


def slug(name):
    """A folder-safe id from a row name: '+ token alignment' -> 'token_alignment'."""
    text = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()
    return text or "row"


def format_value(value):
    """A value as `--set` text that parses back to it (config.parse_override reads YAML)."""
    if isinstance(value, str) and yaml.safe_load(value) == value and value.strip() == value and value:
        return value
    return json.dumps(value)


def override_args(overrides):
    """{dotted key: value} -> ["key=value", ...] in order."""
    return [f"{key}={format_value(value)}" for key, value in overrides.items()]


def keys_overlap(a, b):
    """True when dotted keys `a` and `b` are the same key or one is a section holding the other."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def find_row_conflict(table: AblationTable, keys: List[str]) -> Optional[Tuple[str, AblationRow, str]]:
    """(user key, row, row key) of the first command-line key that a row also sets, else None."""
    for key in keys:
        for row in table.rows:
            for row_key in row.overrides:
                if keys_overlap(key, row_key):
                    return key, row, row_key
    return None
