"""Which checkpoint a run resumes from, checked before anything is built; then the bookkeeping.

`plan_resume` reads only (every rank calls it before the runtime starts): it picks the checkpoint
(`--resume auto`: the newest that verifies, naming each newer one passed over and why), verifies it
and compares the config with the run's saved `config.yaml`. `settle_output_dir` (rank 0, under the
run lock) then makes the directory agree with the resumed step: checkpoints past it are renamed
aside (`.rejected` when they failed verification, `.superseded` when valid but from a later point
the run now goes back on), and `train_log.jsonl` is cut back to it, so that the log holds one
record per step and `--resume auto` never returns to an abandoned future.
"""
import dataclasses
import os
from typing import Any, Dict, List, Optional, Tuple

import mindspore as ms

from mindclip.train import checkpoint as ckpt
from mindclip.train.errors import RunError
from mindclip.train.logger import truncate_log
from mindclip.train.resume_check import check_resume_config

LOG_NAME = "train_log.jsonl"


@dataclasses.dataclass
class ResumePlan:
    path: str  # the checkpoint resumed from
    state: Optional[Dict[str, Any]]  # its verified entries (dropped once loaded)
    step: int  # its optimizer step
    passed_over: List[Tuple[str, str]]  # (path, reason): newer checkpoints that did not verify
    config_changes: Dict[str, list]  # key -> [saved, now]: differences accepted


def plan_resume(cfg, resume, allow=(), say=print):
    """ResumePlan, or None for a fresh start (`--resume auto` with nothing saved yet, or no --resume).

    Raises RunError / CheckpointError / FileNotFoundError naming the file or flag.
    """
    if not resume:
        return None
    out = cfg.train.output_dir
    if resume == "auto":
        path, state, passed_over = ckpt.find_resume_checkpoint(out)
        for bad, reason in passed_over:
            say(f"--resume auto: passing over {bad}: {reason}")
        if path is None and passed_over:
            raise RunError(f"--resume auto: none of the {len(passed_over)} checkpoints in {out} verifies (see "
                           f"above); pass --resume PATH, or --overwrite to start the run again")
        if path is None:
            return None
    else:
        path, state, passed_over = resume, ckpt.read_training_checkpoint(resume), []
    saved_config = os.path.join(os.path.dirname(os.path.abspath(path)), "config.yaml")
    if not os.path.isfile(saved_config):
        raise RunError(f"--resume {path}: no config.yaml beside it to check this run's config against; "
                       f"copy the run's config.yaml there")
    changes = check_resume_config(cfg, saved_config, allow)
    step = int(state["meta.step"].asnumpy())
    say(f"resuming from {path} (step {step})" + (f"; accepted config changes {changes}" if changes else ""))
    return ResumePlan(path, state, step, passed_over, changes)


def saved_step(path):
    """The `meta.step` of a checkpoint, or None when it cannot be read."""
    try:
        state = ms.load_checkpoint(path, choice_func=lambda name: name == "meta.step")
        return int(state["meta.step"].asnumpy())
    except Exception:  # unreadable: not a checkpoint of this timeline either
        return None


def settle_output_dir(plan, output_dir, say=print):
    """Rank 0, holding the run lock: set later checkpoints aside and cut the log back to the resumed
    step (`plan` None: a fresh start at step 0)."""
    step = plan.step if plan else 0
    if plan:
        for path, _ in plan.passed_over:
            if os.path.exists(path):
                say(f"set aside {path} as {ckpt.set_aside(path, '.rejected')}")
        resumed = os.path.abspath(plan.path)
        for path in ckpt.list_checkpoints(output_dir):
            if ckpt.checkpoint_step(path) > step and os.path.abspath(path) != resumed:
                say(f"set aside {path} (step {ckpt.checkpoint_step(path)}, after the resumed step {step}) as "
                    f"{ckpt.set_aside(path, '.superseded')}")
        last = os.path.join(output_dir, "last.ckpt")
        last_step = saved_step(last) if os.path.exists(last) and os.path.abspath(last) != resumed else step
        if last_step is None or last_step > step:
            say(f"set aside {last} (after the resumed step {step}) as {ckpt.set_aside(last, '.superseded')}")
    dropped = truncate_log(os.path.join(output_dir, LOG_NAME), step)
    if dropped:
        say(f"{LOG_NAME}: dropped {dropped} records after step {step} (one record per step)")
