"""A sweep's plan: one `RunSpec` per (row, seed), each checked against the recipe before anything runs.

Overrides are applied in this order, later ones winning:

    the recipe  <  the table's `common`  <  the command line's --set  <  the row's overrides
                <  the run's own `train.seed` and `train.output_dir`

A command-line key that a row also sets is refused (the row would silently win), and so are
`train.seed` and `train.output_dir` (the sweep sets them).
"""
import dataclasses
import os
from typing import Dict, List, Tuple

from mindclip.ablation.tables import AblationRow, AblationTable, find_row_conflict, keys_overlap, override_args
from mindclip.config import ConfigError, parse_override, to_dict

SWEEP_KEYS = ("train.seed", "train.output_dir")  # set per run by the sweep


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run of a sweep and what evaluates it."""
    row: AblationRow
    seed: int
    run_dir: str  # absolute; the trainer writes to run_dir/train, the evaluations to run_dir/eval
    recipe: str
    train_overrides: Tuple[str, ...]  # "key=value" for tools/train.py --set, in order
    model_name: str
    model_overrides: Tuple[str, ...]  # "key=value" for tools/eval.py --set (the run's model.overrides)
    config: Dict  # the resolved run config (plain dict), recorded beside the run

    @property
    def train_dir(self):
        return os.path.join(self.run_dir, "train")

    @property
    def eval_dir(self):
        return os.path.join(self.run_dir, "eval")

    @property
    def checkpoint(self):
        return os.path.join(self.train_dir, "last.ckpt")

    @property
    def label(self):
        return f"{self.row.id} seed {self.seed}"


def parse_seeds(text):
    """'0,1,2' -> [0, 1, 2]; distinct non-negative integers."""
    try:
        seeds = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds must be distinct integers >= 0, got {text!r}")
    return seeds


def check_user_overrides(table: AblationTable, user_overrides):
    """Refuse command-line overrides that the sweep or a row sets (they would be lost)."""
    keys = [parse_override(text)[0] for text in user_overrides]
    for key in keys:
        for sweep_key in SWEEP_KEYS:
            if keys_overlap(key, sweep_key):
                raise ConfigError(f"--set {key}: the sweep sets {sweep_key} for each run (use --seeds and --out)")
    conflict = find_row_conflict(table, keys)
    if conflict:
        key, row, row_key = conflict
        raise ConfigError(f"--set {key}: row {row.name!r} ({os.path.basename(table.path)}:{row.line}) sets "
                          f"{row_key}, so this override would be lost; change the rows instead")


def flatten(tree, prefix=""):
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def plan_sweep(table: AblationTable, recipe, seeds, out_dir, user_overrides=(), row_ids=None) -> List[RunSpec]:
    """Every (row, seed) run, rows in table order then seeds; each resolved config is loaded (and so
    checked) now. Raises ConfigError naming the row, its line and the offending key."""
    from mindclip.models.registry import get_model_config  # loads MindSpore (the presets check their keys)
    from mindclip.train.config import load_run_config

    check_user_overrides(table, user_overrides)
    rows = select_rows(table, row_ids)
    out_dir = os.path.abspath(out_dir)
    specs = []
    for row in rows:
        for seed in seeds:
            run_dir = os.path.join(out_dir, "runs", row.id, f"seed{seed}")
            overrides = (override_args(table.common) + list(user_overrides) + override_args(row.overrides)
                         + [f"train.seed={seed}", f"train.output_dir={os.path.join(run_dir, 'train')}"])
            try:
                cfg = load_run_config(recipe, overrides)
                get_model_config(cfg.model.name, **cfg.model.overrides)
            except (ConfigError, ValueError) as e:
                raise ConfigError(f"row {row.name!r} ({os.path.basename(table.path)}:{row.line}): {e}") from None
            model_overrides = override_args(flatten(cfg.model.overrides))
            specs.append(RunSpec(row=row, seed=seed, run_dir=run_dir, recipe=os.path.abspath(recipe),
                                 train_overrides=tuple(overrides), model_name=cfg.model.name,
                                 model_overrides=tuple(model_overrides), config=to_dict(cfg)))
    return specs


def select_rows(table: AblationTable, row_ids=None):
    """The table's rows, or those named in `row_ids` (in table order; the first row is always kept
    as the reference of the deltas)."""
    if not row_ids:
        return list(table.rows)
    known = [row.id for row in table.rows]
    unknown = [r for r in row_ids if r not in known]
    if unknown:
        raise ConfigError(f"--rows: no row {unknown[0]!r} in {table.name} (rows: {', '.join(known)})")
    return [row for row in table.rows if row.id in row_ids or row is table.rows[0]]
