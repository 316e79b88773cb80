"""Progress line on stdout and a JSON-lines log per optimizer step (rank 0 only).

`train_log.jsonl` holds one record per optimizer step, `{"step", "eval": {...}}` records of held-out
evaluations and `{"step", "event": ...}` bookkeeping records (a resume).
"""
import json
import math
import os
import sys
import time


def format_duration(seconds):
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def truncate_log(path, last_step):
    """Keep only the records of steps <= `last_step` in the JSON-lines log `path` (rewritten atomically).

    A resumed run restarts after its checkpoint's step: the records an interrupted run wrote past
    it (and a line cut short by a kill) go, so the log holds one record per step.
    Returns the number of lines dropped.
    """
    if not os.path.isfile(path):
        return 0
    kept, dropped = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
                keep = int(record["step"]) <= last_step
            except (ValueError, KeyError, TypeError):
                keep = False  # a torn last line
            if keep:
                kept.append(line if line.endswith("\n") else line + "\n")
            else:
                dropped += 1
    if dropped:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(kept)
        os.replace(tmp, path)
    return dropped


class TrainLogger:
    """Writes `train_log.jsonl` (one record per step) and prints a progress line every `every` steps."""

    def __init__(self, output_dir, total_steps, every=1, enabled=True, stream=None):
        self.enabled = enabled
        self.total_steps = total_steps
        self.every = max(1, every)
        self.stream = stream or sys.stdout
        self.path = os.path.join(output_dir, "train_log.jsonl")
        self._file = open(self.path, "a", encoding="utf-8") if enabled else None
        self._started = time.time()
        self._first_step = None

    def log(self, record):
        """`record` holds step, epoch, lr, loss, every part, logit_scale, step_time, images_per_s, ..."""
        if not self.enabled:
            return
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        step = record["step"]
        if self._first_step is None:
            self._first_step = step
            self._started = time.time() - record["step_time"]
        if step % self.every == 0 or step == self.total_steps:
            self.stream.write(self.progress_line(record) + "\n")
            self.stream.flush()

    def progress_line(self, record):
        step = record["step"]
        done = step - self._first_step + 1
        elapsed = time.time() - self._started
        eta = elapsed / done * (self.total_steps - step) if done > 0 else float("nan")
        parts = " ".join(f"{k}={v:.4f}" for k, v in record["parts"].items())
        skipped = f" skipped={record['skipped_steps']}" if record["skipped_steps"] else ""
        return (f"step {step}/{self.total_steps} ep {record['epoch']} loss={record['loss']:.4f} {parts} "
                f"lr={record['lr']:.2e} scale={record['logit_scale']:.2f} "
                f"{record['images_per_s']:.1f} img/s eta {format_duration(eta)}{skipped}")

    def log_eval(self, step, metrics):
        """Held-out metrics: one `{"step", "eval": {...}}` record and a line on stdout."""
        if not self.enabled:
            return
        self._file.write(json.dumps({"step": step, "eval": metrics}) + "\n")
        self._file.flush()
        shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        self.message(f"eval @ step {step}: {shown}")

    def log_event(self, step, event, **fields):
        """A bookkeeping record `{"step", "event", ...}` (e.g. a resume and the config changes it accepted)."""
        if self.enabled:
            self._file.write(json.dumps({"step": step, "event": event, **fields}) + "\n")
            self._file.flush()

    def message(self, text):
        if self.enabled:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None
