"""Strict YAML -> dataclass loading with dotted command-line overrides.

Depends on nothing else in the package. Every error names the offending key and the file it came
from, so a typo in a 200-line recipe is refused before anything is built.
"""
import dataclasses
import os
import typing

import yaml


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names the key and its source."""


def read_yaml(path):
    """Read a YAML mapping from `path`, with errors that name the file and line."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: invalid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


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
    """Load `cls` from YAML `path` (or the mapping `base`), then apply `key=value` overrides.

    Overrides are checked against the same schema; a mistyped override key is refused with the
    message naming it.
    """
    data = read_yaml(path) if path else dict(base or {})
    source = path or "config"
    # the file alone must be valid, so that an error names the file rather than an override
    from_dict(cls, data, source)
    for text in overrides:
        key, value = parse_override(text)
        set_dotted(data, key, value, source=f"override '{text}'")
        from_dict(cls, data, f"override '{text}'", validate=False)  # names a mistyped key or value
    return from_dict(cls, data, f"{source} with overrides {list(overrides)}" if overrides else source)
