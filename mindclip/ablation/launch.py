"""How a sweep starts its processes: the train and eval command lines, written to the run's folder,
run with their output appended to a log file, and killed if the sweep itself dies.

Local runs are `python tools/train.py ...`; with `kind="msrun"` the training is one msrun line per
run (`msrun --worker_num=N --local_worker_num=N --master_port=P --log_dir=RUN/msrun --join=True
tools/train.py ...`). Each run's line is written to `RUN/launch.sh` and that script is what runs,
so the file shows exactly what was launched. Evaluation always runs as one local process.
"""
import dataclasses
import os
import shlex
import subprocess
import sys

LAUNCHERS = ("local", "msrun")
ORPHAN_GUARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "orphan_guard.py")


@dataclasses.dataclass(frozen=True)
class Launcher:
    """Where the tools are and how training is started.

    Args:
        train_script, eval_script: paths of tools/train.py and tools/eval.py.
        python: the interpreter (its folder goes first on PATH: msrun starts `python` from PATH).
        kind: "local" (one process) or "msrun" (`cards` processes on this node).
        cards: workers per msrun run.
        master_port: msrun's port for the first run; run i uses master_port + i, so a port left in
            TIME_WAIT by one run never blocks the next.
    """
    train_script: str
    eval_script: str
    python: str = sys.executable
    kind: str = "local"
    cards: int = 1
    master_port: int = 8118

    def __post_init__(self):
        if self.kind not in LAUNCHERS:
            raise ValueError(f"launcher must be one of {', '.join(LAUNCHERS)}, got {self.kind!r}")
        if self.cards < 1 or (self.kind == "local" and self.cards != 1):
            raise ValueError(f"--cards {self.cards}: a local launch uses one process; use --launcher msrun "
                             f"for several cards")

    def msrun(self):
        """msrun beside the interpreter (a venv's bin), else the one on PATH."""
        beside = os.path.join(os.path.dirname(self.python), "msrun")
        return beside if os.path.isfile(beside) else "msrun"

    def train_argv(self, spec, index):
        """The training command of run number `index` of the sweep (resumes the run's own checkpoints)."""
        tool = [self.train_script, "-c", spec.recipe]
        for text in spec.train_overrides:
            tool += ["--set", text]
        tool += ["--resume", "auto"]
        if self.kind == "local":
            return [self.python] + tool
        return [self.msrun(), f"--worker_num={self.cards}", f"--local_worker_num={self.cards}",
                f"--master_port={self.master_port + index}", f"--log_dir={os.path.join(spec.run_dir, 'msrun')}",
                "--join=True"] + tool

    def eval_argv(self, spec, eval_spec):
        """The evaluation command of one (task, dataset) of a finished run."""
        argv = [self.python, self.eval_script, "--model", spec.model_name, "--checkpoint", spec.checkpoint]
        for text in spec.model_overrides:
            argv += ["--set", text]
        return argv + list(eval_spec.args) + ["--output-dir", spec.eval_dir, "--no-progress"]

    def environment(self):
        env = dict(os.environ)
        env["PATH"] = os.path.dirname(self.python) + os.pathsep + env.get("PATH", "")
        env["PYTHONUNBUFFERED"] = "1"  # the logs show progress as it happens, not at exit
        return env


def write_script(path, argv, cwd):
    """A shell script that runs `argv` from `cwd` (exec: the script's process becomes the command)."""
    lines = ["#!/bin/sh", "# written by mindclip.ablation; rerun by hand with: sh " + shlex.quote(path),
             f"cd {shlex.quote(cwd)} || exit 2", "exec " + shlex.join(argv), ""]
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)
    return path


def run_logged(argv, log_path, env=None, cwd=None, python=sys.executable):
    """Run `argv`, stdout and stderr appended to `log_path`; return the exit status. The process
    gets SIGTERM if this one dies (orphan_guard.py), so a killed sweep leaves no training behind
    to race the resumed one."""
    guarded = [python, ORPHAN_GUARD, str(os.getpid())] + list(argv)
    with open(log_path, "ab") as log:
        log.write(f"\n$ {shlex.join(argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(guarded, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=cwd)
        try:
            return process.wait()
        except BaseException:  # KeyboardInterrupt or SystemExit in the sweep: stop the child too
            process.terminate()
            process.wait()
            raise


def last_error(path):
    """The line of a log that best says why a tool failed: its last `error:` line, else the last
    line naming an Error (MindSpore's teardown noise aside), else the last line."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 65536))
            lines = [line.strip() for line in f.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    lines = [line for line in lines if "total_instance_count" not in line and "Cell.__del__" not in line]
    for test in (lambda l: l.startswith(("error:", "config error:")), lambda l: "Error" in l, lambda l: True):
        found = [line for line in lines if test(line)]
        if found:
            return found[-1][:500]
    return ""
