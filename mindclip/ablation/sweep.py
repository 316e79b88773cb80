"""Running a sweep: each run trains, is evaluated, and ends in one result file, `RUN/result.json`.

A run's folder (`OUT/runs/<row id>/seed<S>/`):

    spec.json        what the run is: row, seed, resolved config, commands (written first)
    launch.sh        the training line that ran (python or msrun)
    train/           tools/train.py's output_dir: config.yaml, train_log.jsonl, checkpoints, last.ckpt
    train.out        the trainer's console output (appended on every attempt)
    eval/            tools/eval.py's result JSON files
    eval.out         the evaluations' console output
    result.json      written last and atomically: status "done" (metrics) or "failed" (stage, exit
                     status, the error line, the log): the run is finished exactly when it exists

A sweep run again skips every run that has its result.json; a run without one resumes: training
continues from the run's newest good checkpoint (`--resume auto`; `last.ckpt` means training
finished), and an evaluation whose JSON exists is not repeated. A failed run stays failed (shown
as failed in the report) until the sweep is run with `retry_failed=True`. A run folder whose
spec.json disagrees with the plan (another recipe, other overrides, other evaluations) is refused
rather than mixed.
"""
import dataclasses
import datetime
import json
import os
import time
from typing import Callable, List, Optional, Sequence, Tuple

from mindclip._io import write_json_atomic
from mindclip.ablation.launch import Launcher, last_error, run_logged, write_script
from mindclip.ablation.plan import RunSpec
from mindclip.config import ConfigError
from mindclip.eval.results import TASKS, result_path

RESULT_FILE = "result.json"
SPEC_FILE = "spec.json"
STATUSES = ("done", "failed")
RESERVED_EVAL_FLAGS = ("--model", "--checkpoint", "--set", "--output-dir", "--task")


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """One evaluation of every run: a task and tools/eval.py's dataset arguments."""
    task: str
    dataset: str
    args: Tuple[str, ...]  # tools/eval.py arguments, "--task TASK" included

    @property
    def label(self):
        return f"{self.dataset} {self.task}"


def parse_eval(text):
    """'zeroshot --dataset demo --root demo_out/data' -> EvalSpec (the first word is the task)."""
    import shlex

    words = shlex.split(text)
    if not words or words[0] not in TASKS:
        raise ConfigError(f"--eval {text!r}: must start with the task ({' or '.join(TASKS)}), then tools/eval.py's "
                          f"dataset arguments")
    reserved = [w.split("=")[0] for w in words[1:] if w.split("=")[0] in RESERVED_EVAL_FLAGS]
    if reserved:
        raise ConfigError(f"--eval {text!r}: {reserved[0]} is set by the sweep for each run")
    dataset = [w.split("=", 1)[1] for w in words if w.startswith("--dataset=")]
    dataset += [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--dataset"]
    if len(dataset) != 1:
        raise ConfigError(f"--eval {text!r}: needs exactly one --dataset NAME")
    return EvalSpec(task=words[0], dataset=dataset[0], args=("--task", words[0]) + tuple(words[1:]))


def check_evals(evals: Sequence[EvalSpec]):
    labels = [e.label for e in evals]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ConfigError(f"--eval: {twice[0]!r} is given twice")


def read_run_result(run_dir):
    """The run's result record, or None when the run has not finished (no or unreadable file)."""
    path = os.path.join(run_dir, RESULT_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("status") in STATUSES else None


def spec_record(spec: RunSpec, launcher: Launcher, evals: Sequence[EvalSpec], index):
    return {"row": spec.row.id, "name": spec.row.name, "seed": spec.seed, "recipe": spec.recipe,
            "train_overrides": list(spec.train_overrides), "config": spec.config,
            "launcher": {"kind": launcher.kind, "cards": launcher.cards},
            "evals": [list(e.args) for e in evals],
            "commands": {"train": launcher.train_argv(spec, index),
                         "eval": [launcher.eval_argv(spec, e) for e in evals]}}


def check_run_dir(spec: RunSpec, record):
    """Refuse a run folder whose spec.json (finished or not) describes a different run; return
    whether it has one."""
    path = os.path.join(spec.run_dir, SPEC_FILE)
    if not os.path.isfile(path):
        return False
    try:
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
    except ValueError as e:
        raise ConfigError(f"{path}: unreadable ({e}); delete {spec.run_dir} to start run {spec.label} again") from None
    for key in ("recipe", "config", "evals", "launcher"):
        if old.get(key) != record[key]:
            raise ConfigError(f"{path}: run {spec.label} was made with a different {key}; use another --out, "
                              f"or delete {spec.run_dir} to run it again")
    return True


def check_sweep(specs: List[RunSpec], launcher: Launcher, evals: Sequence[EvalSpec]):
    """Before anything runs: every existing run folder must hold the run the plan describes."""
    for index, spec in enumerate(specs):
        check_run_dir(spec, spec_record(spec, launcher, evals, index))


def claim_run_dir(spec: RunSpec, record):
    """Write spec.json for a new run (refusing a folder that holds a different run)."""
    if not check_run_dir(spec, record):
        os.makedirs(spec.run_dir, exist_ok=True)
        write_json_atomic(os.path.join(spec.run_dir, SPEC_FILE), record)


def eval_result_path(spec: RunSpec, eval_spec: EvalSpec):
    return result_path(spec.eval_dir, spec.model_name, spec.checkpoint, eval_spec.dataset, eval_spec.task)


def train_summary(train_dir):
    """Steps, final loss and skipped steps from the run's train_log.jsonl (None if there is no log)."""
    path = os.path.join(train_dir, "train_log.jsonl")
    last = None
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and "step" in record and "loss" in record:
                    last = record
    except OSError:
        return None
    if last is None:
        return None
    return {"steps": last["step"], "final_loss": last["loss"], "final_parts": last.get("parts", {}),
            "skipped_steps": last.get("skipped_steps", 0)}


def collect_metrics(spec: RunSpec, evals: Sequence[EvalSpec]):
    """{"<dataset>/<task>/<metric>": value} over the run's evaluation files (numbers only)."""
    metrics = {}
    for eval_spec in evals:
        with open(eval_result_path(spec, eval_spec), encoding="utf-8") as f:
            record = json.load(f)
        for key, value in record["metrics"].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[f"{eval_spec.dataset}/{eval_spec.task}/{key}"] = value
    return metrics


def _now():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _finish(spec: RunSpec, record):
    record.update(row=spec.row.id, name=spec.row.name, seed=spec.seed, run_dir=spec.run_dir, finished=_now())
    write_json_atomic(os.path.join(spec.run_dir, RESULT_FILE), record)
    return record


def _failed(spec, stage, status, log, seconds):
    return _finish(spec, {"status": "failed", "stage": stage, "exit_status": status, "error": last_error(log),
                          "log": log, "seconds": seconds, "train": train_summary(spec.train_dir)})


def run_one(spec: RunSpec, launcher: Launcher, evals: Sequence[EvalSpec], index, say=print):
    """Train (or resume) and evaluate one run; write and return its result record."""
    claim_run_dir(spec, spec_record(spec, launcher, evals, index))
    env, cwd, seconds = launcher.environment(), os.getcwd(), {}
    trained_now = not os.path.isfile(spec.checkpoint)
    if trained_now:
        script = write_script(os.path.join(spec.run_dir, "launch.sh"), launcher.train_argv(spec, index), cwd)
        log = os.path.join(spec.run_dir, "train.out")
        say(f"[{spec.label}] training: sh {script}  (log {log})")
        start = time.time()
        status = run_logged(["/bin/sh", script], log, env=env, cwd=cwd, python=launcher.python)
        seconds["train"] = round(time.time() - start, 1)
        if status != 0 or not os.path.isfile(spec.checkpoint):
            return _failed(spec, "train", status, log, seconds)
    for eval_spec in evals:
        path = eval_result_path(spec, eval_spec)
        if os.path.isfile(path) and not trained_now:
            continue  # evaluated before the sweep stopped
        log = os.path.join(spec.run_dir, "eval.out")
        say(f"[{spec.label}] evaluating {eval_spec.label}  (log {log})")
        start = time.time()
        status = run_logged(launcher.eval_argv(spec, eval_spec), log, env=env, cwd=cwd, python=launcher.python)
        seconds[f"eval {eval_spec.label}"] = round(time.time() - start, 1)
        if status != 0 or not os.path.isfile(path):
            return _failed(spec, f"eval {eval_spec.label}", status, log, seconds)
    return _finish(spec, {"status": "done", "metrics": collect_metrics(spec, evals),
                          "train": train_summary(spec.train_dir), "seconds": seconds})


def run_sweep(specs: List[RunSpec], launcher: Launcher, evals: Sequence[EvalSpec], retry_failed=False,
              say=print, after_each: Optional[Callable[[List[dict]], None]] = None):
    """Run every unfinished run in order; return the result records of all runs (plan order).

    `after_each(results)` is called after each run that ran (e.g. to rewrite the report), with the
    records known so far (None for runs not finished yet).
    """
    check_sweep(specs, launcher, evals)
    results = [read_run_result(spec.run_dir) for spec in specs]
    for index, spec in enumerate(specs):
        previous = results[index]
        if previous is not None and (previous["status"] == "done" or not retry_failed):
            say(f"[{spec.label}] {previous['status']} before: skipped")
            continue
        if previous is not None:
            os.remove(os.path.join(spec.run_dir, RESULT_FILE))
        results[index] = run_one(spec, launcher, evals, index, say=say)
        record = results[index]
        extra = f" at {record['stage']} (exit status {record['exit_status']}): {record['error']}" \
            if record["status"] == "failed" else ""
        say(f"[{spec.label}] {record['status']}{extra}")
        if after_each is not None:
            after_each(results)
    return results
