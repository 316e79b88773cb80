"""Strict YAML -> dataclass loading with dotted command-line overrides.

Depends on nothing else in the package. Every error names the offending key and the file it came
from, so a typo in a 200-line recipe is refused before anything is built. A key written twice in
one mapping is refused with both lines (plain YAML keeps the last one silently). A file may start
from another with the top-level key `_base_: path/relative/to/this/file.yaml`: the base (and its
own base, depth-first) is read first and the file's keys win, mappings merged key by key.
"""
import dataclasses
import os
import typing

import yaml


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names the key and its source."""


BASE_KEY = "_base_"
"""Top-level recipe key: a YAML file (path relative to the recipe) whose keys the recipe starts from."""


class DuplicateKeyError(yaml.YAMLError):
    """A mapping holds the same key twice (YAML itself would keep the last one silently)."""

    def __init__(self, key, line, first_line):
        super().__init__(f"duplicate key {key!r} on line {line} (first on line {first_line})")
        self.key, self.line, self.first_line = key, line, first_line


class _UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key written twice in one mapping (merge keys `<<` aside)."""

    def construct_mapping(self, node, deep=False):
        first_lines = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = first_lines.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: the base constructor reports it
                continue
            if first != key_node.start_mark.line + 1:
                raise DuplicateKeyError(key, key_node.start_mark.line + 1, first)
        return super().construct_mapping(node, deep)


def _read_yaml_file(path):
    """One YAML file as a mapping; a duplicate key or bad syntax is refused naming the file and line."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.load(f, Loader=_UniqueKeyLoader)
        except DuplicateKeyError as e:
            raise ConfigError(f"{path}:{e.line}: key '{e.key}' is written twice in one section (first on line "
                              f"{e.first_line}); keep one") from e
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else path
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"{where}: invalid YAML: {problem}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def read_yaml_layers(path):
    """[(file, mapping)] of `path` and its `_base_` chain, deepest base first; `_base_` keys removed.

    A base path is relative to the file naming it. A missing base, a base that is not a path and a
    cycle (a recipe that is its own base, directly or not) are refused naming the files.
    """
    layers, seen = [], []
    while True:
        data = _read_yaml_file(path)
        layers.append((path, data))
        seen.append(os.path.realpath(path))
        if BASE_KEY not in data:
            return layers[::-1]
        base = data.pop(BASE_KEY)
        if not isinstance(base, str) or not base.strip():
            raise ConfigError(f"{path}: '{BASE_KEY}' must be the path of a YAML file, got {base!r}")
        base_path = os.path.normpath(os.path.join(os.path.dirname(path), base))
        if not os.path.isfile(base_path):
            raise ConfigError(f"{path}: {BASE_KEY} file not found: {base_path}")
        if os.path.realpath(base_path) in seen:
            chain = " -> ".join(p for p, _ in layers)
            raise ConfigError(f"{path}: {BASE_KEY} cycle: {chain} -> {base_path}")
        path = base_path


def merge_trees(base, recipe):
    """`base` updated by `recipe`, depth-first: mappings merge key by key, any other value (lists too) replaces."""
    merged = dict(base)
    for key, value in recipe.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_trees(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path):
    """Read a YAML mapping from `path`, its `_base_` chain merged under it (the file's own keys win).

    Errors name the file and line: a missing file, bad YAML, a key written twice in one mapping.
    """
    return _merge_layers(read_yaml_layers(path))


def _merge_layers(layers):
    merged = {}
    for _, data in layers:
        merged = merge_trees(merged, data)
    return merged


def parse_override(text):
    """`"optim.lr=1e-3"` -> `("optim.lr", 1e-3)`; the value is parsed as YAML (numbers, lists, bools)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.subkey=value")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return key, parsed


def set_dotted(tree, dotted_key, value, source="override"):
    """Set `tree["a"]["b"] = value` for `dotted_key="a.b"`, creating mappings on the way."""
    parts = dotted_key.split(".")
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: '{'.'.join(parts[:i + 1])}' is not a section, cannot set '{dotted_key}'")
        node = child
    node[parts[-1]] = value


def _type_name(tp):
    return getattr(tp, "__name__", str(tp))


def _coerce(value, tp, key, source, validate=True):
    """Check `value` against the annotation `tp`, converting only where it is lossless."""
    origin = typing.get_origin(tp)
    if tp is typing.Any:
        return value
    if origin is typing.Union:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, source, validate)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{source}: '{key}' has an invalid value {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a section (mapping), got {value!r}")
        return from_dict(tp, value, source, prefix=key + ".", validate=validate)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: '{key}' must be a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{source}: '{key}' must have {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else typing.Any
        items = [_coerce(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: '{key}' must be true or false, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads "5e-4" (no dot) as a string
            except ValueError:
                pass
        raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{source}: '{key}' must be an integer, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{source}: '{key}' must be a string, got {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{source}: '{key}' must be {_type_name(tp)}, got {value!r}")
    return value


def from_dict(cls, data, source="config", prefix="", validate=True):
    """Build dataclass `cls` from a mapping; unknown keys and wrong types raise ConfigError.

    `source` names the file (or "override") in every message; `prefix` is the dotted path of
    this section. `validate=False` checks keys and types only, not the sections' `validate()`
    (constraints between fields, such as r1 <= r2, hold only once every override is applied).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: section '{prefix.rstrip('.') or '<top>'}' must be a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{source}: unknown key '{prefix}{unknown[0]}' (known keys in this section: {known})")
    kwargs = {name: _coerce(value, hints[name], prefix + name, source, validate) for name, value in data.items()}
    try:
        obj = cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{source}: section '{prefix.rstrip('.') or '<top>'}': {e}") from e
    except ValueError as e:  # a dataclass's own checks (__post_init__) name the field, not its section
        raise ConfigError(f"{source}: {prefix}{e}") from e
    check = getattr(obj, "validate", None) if validate else None
    if check is not None:
        try:
            check()
        except ValueError as e:
            raise ConfigError(f"{source}: {prefix}{e}") from e
    return obj


def to_dict(obj):
    """Dataclass -> plain nested dict (tuples become lists) for YAML/JSON dumping."""
    def plain(value):
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(obj)


def dump_yaml(obj, path):
    """Write a dataclass as YAML atomically (the resolved config beside the checkpoints)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(to_dict(obj), f, sort_keys=False)
    os.replace(tmp, path)


def load_config(cls, path=None, overrides=(), base=None):
    """Load `cls` from YAML `path` (with its `_base_` chain) or the mapping `base`, then apply overrides.

    Each file of the chain is checked on its own first, so that an unknown key or a wrong type names
    the file that holds it; the merged recipe is then checked whole, then every `key=value` override
    against the same schema (a mistyped override key is refused with the message naming it).
    """
    if path:
        layers = read_yaml_layers(path)
        for layer_path, layer in layers:
            from_dict(cls, layer, layer_path, validate=False)
        data = _merge_layers(layers)
        bases = [layer_path for layer_path, _ in layers[:-1]]
        source = f"{path} (over {' <- '.join(reversed(bases))})" if bases else path
    else:
        data, source = dict(base or {}), "config"
    # the recipe alone must be valid, so that an error names the file rather than an override
    from_dict(cls, data, source)
    for text in overrides:
        key, value = parse_override(text)
        set_dotted(data, key, value, source=f"override '{text}'")
        from_dict(cls, data, f"override '{text}'", validate=False)  # names a mistyped key or value
    return from_dict(cls, data, f"{source} with overrides {list(overrides)}" if overrides else source)
