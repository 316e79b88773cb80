"""`python orphan_guard.py PARENT_PID COMMAND [ARGS...]`: run COMMAND so that it is sent SIGTERM when
the process PARENT_PID (the sweep) dies, however it dies (SIGKILL included).

It asks Linux for `PR_SET_PDEATHSIG`, which survives `exec`, then becomes COMMAND. Run by path, not
imported, so it needs nothing of the package; it replaces a `preexec_fn`, which is unsafe in a
parent that has threads (the sweep has imported MindSpore). Elsewhere than Linux it simply execs.
"""
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv):
    parent, command = int(argv[0]), argv[1:]
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)  # this process: libc is linked in
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the sweep died before the request took effect
            sys.exit(1)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
