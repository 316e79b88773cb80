"""Resume only the run that was saved: compare the resolved config with the run's `config.yaml`.

Which keys may differ on resume is data, below. MAY_CHANGE holds the keys that cannot change what
is trained (logging, checkpoint interval and retention, workers, evaluation, memory/speed-only
switches); every other key must match. MUST_MATCH says why for each section and for the keys other
engineers add (`optim.accumulation`, `train.amp_dtype`, `loss.mlm_attention`); a key matched by
neither table must match too (the safe default), and `ut/test_resume_check.py` fails until the new
key is classified. Entries for keys the schema does not have (yet) are simply never compared.
`--resume-allow KEY,...` accepts named must-match keys knowingly; the trainer logs every accepted
difference.
"""
import dataclasses

from mindclip.config import ConfigError, read_yaml, to_dict
from mindclip.train.errors import RunError

MAY_CHANGE = {
    "train.log_every": "logging",
    "train.save_every": "checkpoint interval",
    "train.keep_checkpoints": "checkpoint retention",
    "train.max_consecutive_skips": "a safety stop",
    "train.eval_every": "evaluation",
    "train.eval_data": "evaluation",
    "train.output_dir": "where the run's files live (a moved run)",
    "train.recompute": "memory only: recomputed activations are the same numbers",
    "data.num_workers": "workers",
    "data.val_shards": "evaluation",
    "data.text_buckets": "speed only: exact buckets give the same numbers (docs/data.md)",
}

MUST_MATCH = {  # a key, or a section ending in "." (every key in it, except those in MAY_CHANGE)
    "method": "the objective and the batch columns",
    "model.": "the network (its shapes, its initial weights)",
    "data.": "which samples, their order, batch grouping and augmentation (the saved position counts batches)",
    "loss.": "the objective",
    "loss.mlm_attention": "the MLM branch's attention: what is trained",
    "optim.": "the updates and the learning-rate schedule",
    "optim.accumulation": "features vs gradients accumulation: what is trained",
    "train.": "the schedule, seed or numerics",
    "train.amp_dtype": "the numerics",
}


def flatten(tree, sections, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1}, descending only into `sections` (the dataclass sections)."""
    flat = {}
    for key, value in tree.items():
        dotted = prefix + key
        if dotted in sections and isinstance(value, dict):
            flat.update(flatten(value, sections, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def section_names(cfg, prefix=""):
    """Dotted names of the dataclass-valued fields of `cfg` (a RunConfig: model, data, loss, optim, train)."""
    names = set()
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if dataclasses.is_dataclass(value):
            names.add(prefix + field.name)
            names.update(section_names(value, prefix + field.name + "."))
    return names


def config_keys(cfg):
    """{dotted key: plain value} of a config dataclass."""
    return flatten(to_dict(cfg), section_names(cfg))


def must_match(key):
    """True when a different value of `key` would change what is trained."""
    return key not in MAY_CHANGE


def classified(key):
    """True when a table names `key` (itself, or its section for MUST_MATCH)."""
    return key in MAY_CHANGE or key in MUST_MATCH or any(
        p.endswith(".") and key.startswith(p) for p in MUST_MATCH)


def resolved_defaults(cfg):
    """The default config of `cfg`'s class for `cfg`'s method, resolved as a loaded config is
    (RunConfig.validate fills the method's loss defaults)."""
    default = type(cfg)()
    if hasattr(cfg, "method"):
        default = dataclasses.replace(default, method=cfg.method)
        default.validate()
    return default


def differences(cfg, saved_path):
    """[(key, saved value, current value)] where `cfg` differs from the YAML at `saved_path`.

    A key the saved file lacks (added to the schema after the run was saved) counts as its
    default; a saved key the schema no longer has is ignored.
    """
    try:
        saved_tree = read_yaml(saved_path)
    except ConfigError as e:
        raise RunError(f"--resume: cannot read the run's saved config: {e}") from None
    sections = section_names(cfg)
    current = config_keys(cfg)
    defaults = config_keys(resolved_defaults(cfg))
    saved = flatten(saved_tree, sections)
    return [(key, saved.get(key, defaults[key]), value) for key, value in current.items()
            if _plain(saved.get(key, defaults[key])) != _plain(value)]


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def parse_allow(text, cfg):
    """`"optim.lr,data.batch_size"` -> ["optim.lr", "data.batch_size"]; unknown keys are refused."""
    keys = [k.strip() for k in (text or "").split(",") if k.strip()]
    known = config_keys(cfg)
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise RunError(f"--resume-allow: unknown config key {unknown[0]!r} (keys look like optim.lr)")
    return keys


def check_resume_config(cfg, saved_path, allow=()):
    """Refuse (RunError listing the keys) when `cfg` differs from `saved_path` in a must-match key
    not named in `allow`; return {key: [saved, current]} of the accepted differences."""
    found = differences(cfg, saved_path)
    refused = [(k, old, new) for k, old, new in found if must_match(k) and k not in allow]
    if refused:
        listed = ", ".join(f"{k} (saved {old!r}, now {new!r})" for k, old, new in refused)
        keys = ",".join(k for k, _, _ in refused)
        raise RunError(f"--resume: the config differs from the run's {saved_path} in keys that change what is "
                       f"trained: {listed}; resume with the saved values, start a new run, or pass "
                       f"--resume-allow {keys} to accept the change knowingly")
    return {k: [old, new] for k, old, new in found}
