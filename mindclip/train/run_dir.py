"""One run per output directory: a lock held for the run's lifetime, and a refusal to mix two runs.

`OUTPUT_DIR/run.lock` holds the holder's pid and host and is locked with `fcntl.flock` while the run
lives. The kernel drops the lock when its process ends, however it ends (SIGKILL included), so a
lock file whose lock nobody holds is stale and the next run takes it over, saying whose it was. A
run that ends normally deletes the file.

A directory *holds a run* when it has any of RUN_FILES: a new run there is refused unless it
resumes that run (`--resume`) or the user asks to overwrite it (the earlier run's files are then
deleted, and only those).
"""
import fcntl
import glob
import json
import os
import socket
import time

from mindclip.train.errors import RunError

LOCK_NAME = "run.lock"
RUN_FILES = ("config.yaml", "train_log.jsonl", "last.ckpt", "ckpt_step*.ckpt")  # globs: a run's own files
AFTERMATH = ("last.partial.ckpt", "ckpt_step*.ckpt.rejected", "ckpt_step*.ckpt.superseded",
             "last.ckpt.superseded", "train_log.jsonl.tmp", "config.yaml.tmp")  # deleted with the run


def run_files(output_dir, patterns=RUN_FILES):
    """The files of an earlier run in `output_dir`, sorted."""
    found = set()
    for pattern in patterns:
        found.update(glob.glob(os.path.join(glob.escape(output_dir), pattern)))
    return sorted(found)


def describe_holder(text):
    """'pid 123 on host-a since 2026-...' from a lock file's JSON (or the raw text if it is not JSON)."""
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return repr(text.strip()[:80]) if text.strip() else "an unknown process"


def in_use(lock_path, holder):
    return RunError(f"train.output_dir {os.path.dirname(lock_path)} is in use by another run "
                    f"({describe_holder(holder)}; lock file {lock_path})")


class RunLock:
    """`RunLock(output_dir).acquire() -> previous holder text or None`; `release()` at the end."""

    def __init__(self, output_dir):
        self.path = os.path.join(output_dir, LOCK_NAME)
        self.fd = None

    def acquire(self):
        """Take the lock or raise RunError naming the holder. Returns the stale holder's text, if any."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                os.close(fd)
                raise in_use(self.path, holder) from None
            # the holder may have released and deleted the file between our open and flock: retry
            if os.path.exists(self.path) and os.path.samestat(os.fstat(fd), os.stat(self.path)):
                break
            os.close(fd)
        previous = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode() + b"\n", 0)
        os.fsync(fd)
        self.fd = fd
        return previous if previous.strip() else None

    def release(self):
        """Delete the lock file, then drop the lock (a waiting run then finds no file, or a new one)."""
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None


def probe_lock(output_dir):
    """Read-only: raise RunError naming the holder when a live run holds `output_dir`'s lock."""
    path = os.path.join(output_dir, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: two probing ranks do not collide
    except BlockingIOError:
        raise in_use(path, os.pread(fd, 4096, 0).decode("utf-8", "replace")) from None
    finally:
        os.close(fd)  # drops the shared lock too


def check_run_dir(output_dir, resume=None, overwrite=False):
    """Read-only, on every rank before anything is built: refuse a directory locked by a live run, or
    one holding a run this one would mix with (see `claim_run_dir`)."""
    probe_lock(output_dir)
    refuse_mixing(output_dir, resume, overwrite)


def claim_run_dir(output_dir, resume=None, overwrite=False, say=print):
    """Lock `output_dir` for this run (rank 0), check again that the run may start there, and with
    `overwrite` delete the earlier run's files; return the RunLock.

    resume: None (a new run), "auto" or a checkpoint path. Raises RunError: lock held by a live run,
    or a directory holding a run this one would mix with.
    """
    os.makedirs(output_dir, exist_ok=True)
    lock = RunLock(output_dir)
    stale = lock.acquire()
    if stale:
        say(f"taking over the stale lock of {describe_holder(stale)} (that process no longer holds it)")
    try:
        refuse_mixing(output_dir, resume, overwrite)
        if overwrite:
            delete_earlier_run(output_dir, say)
    except BaseException:
        lock.release()
        raise
    return lock


def _inside(path, directory):
    return os.path.dirname(os.path.abspath(path)) == os.path.abspath(directory)


def refuse_mixing(output_dir, resume, overwrite):
    """RunError when a new run would start in a directory holding a run (without --resume or
    --overwrite), when --resume PATH comes from elsewhere into a directory holding another run, or
    when --overwrite would delete the run being resumed."""
    if overwrite and resume and (resume == "auto" or _inside(resume, output_dir)):
        raise RunError(f"--overwrite would delete the run that --resume {resume} continues: pass one of them")
    earlier = run_files(output_dir)
    if overwrite or not earlier:
        return
    names = ", ".join(os.path.basename(p) for p in earlier[:4]) + (" ..." if len(earlier) > 4 else "")
    if not resume:
        raise RunError(f"train.output_dir {output_dir} already holds a run ({names}): pass --resume auto to "
                       f"continue it, --overwrite to delete it and start again, or choose another output_dir")
    if resume != "auto" and not _inside(resume, output_dir):
        raise RunError(f"--resume {resume}: train.output_dir {output_dir} holds another run ({names}); resume "
                       f"into an empty output_dir, or pass --overwrite to delete that run first")


def delete_earlier_run(output_dir, say=print):
    """--overwrite: delete the earlier run's files (RUN_FILES and AFTERMATH, nothing else)."""
    doomed = run_files(output_dir) + run_files(output_dir, AFTERMATH)
    for path in doomed:
        os.remove(path)
    if doomed:
        shown = ", ".join(os.path.basename(p) for p in doomed[:6]) + (" ..." if len(doomed) > 6 else "")
        say(f"--overwrite: deleted {len(doomed)} files of the earlier run in {output_dir}: {shown}")
