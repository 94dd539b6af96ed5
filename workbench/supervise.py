"""A small process supervisor: `python -m workbench.supervise [--grace S] NAME=COMMAND ...`.

`make run` and `make serve` start the web server, Celery workers and beat through it. Each child runs in its own
session, so the terminal's Ctrl-C reaches only this process (and make), which then stops every child: SIGTERM to
each (gunicorn and Celery shut down gracefully on it), up to `--grace` seconds, then SIGKILL to each child's whole
process group. A second Ctrl-C kills at once. When one child exits on its own, the others are stopped and this exits
with status 1, so a crashed worker is never left unnoticed. A requested stop exits 0, so make reports no error.
Standard library only: no Django.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import time
from types import FrameType

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # If the supervisor itself is killed (SIGKILL, OOM), its direct children get SIGTERM instead of living on.
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no such call
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"code {returncode}"


class Supervisor:
    def __init__(self, children: list[tuple[str, list[str]]], *, grace: float) -> None:
        self.specs = children
        self.grace = grace
        self.procs: dict[str, subprocess.Popen] = {}
        self.stop_requested = 0  # signals received

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested += 1
        if self.stop_requested > 1:
            self._signal_all(signal.SIGKILL)

    def _signal_all(self, sig: int) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if sig == signal.SIGKILL:
                    os.killpg(proc.pid, sig)  # the whole group: reloader children, pool processes
                elif proc.poll() is None:
                    # SIGTERM to the leader only: gunicorn and Celery stop their own workers in order (a pool
                    # process hit directly dies mid-task and its master logs an error).
                    os.kill(proc.pid, sig)

    def _log(self, message: str) -> None:
        print(f"supervise: {message}", file=sys.stderr, flush=True)

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        for name, argv in self.specs:
            if self.stop_requested:
                break
            self.procs[name] = subprocess.Popen(argv, start_new_session=True, preexec_fn=_die_with_parent)
        failed: str | None = None
        while not self.stop_requested and failed is None:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    failed = name
                    break
            else:
                time.sleep(0.2)
        if failed is not None:
            self._log(f"{failed} exited ({_describe(self.procs[failed].returncode)}); stopping the others")
        else:
            self._log(f"stopping {', '.join(self.procs)} (up to {self.grace:g} s; Ctrl-C again to kill them now)")
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while any(p.poll() is None for p in self.procs.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        slow = [name for name, p in self.procs.items() if p.poll() is None]
        if slow:
            self._log(f"killing {', '.join(slow)} (still running after {self.grace:g} s)")
        self._signal_all(signal.SIGKILL)  # also any stragglers left in a group whose leader has exited
        for proc in self.procs.values():
            proc.wait()
        return 1 if failed is not None else 0


def parse_child(spec: str) -> tuple[str, list[str]]:
    name, sep, command = spec.partition("=")
    if not sep or not name or not command.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=COMMAND, got {spec!r}")
    return name, shlex.split(command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.supervise", description=__doc__.split("\n")[0])
    parser.add_argument("--grace", type=float, default=20.0, help="seconds children get to stop before SIGKILL")
    parser.add_argument("children", nargs="+", type=parse_child, metavar="NAME=COMMAND")
    args = parser.parse_args(argv)
    return Supervisor(args.children, grace=args.grace).run()


if __name__ == "__main__":
    sys.exit(main())
