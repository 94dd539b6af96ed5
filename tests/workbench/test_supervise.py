"""The process supervisor behind `make run` and `make serve` (workbench/supervise.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.supervise import parse_child

ROOT = Path(__file__).resolve().parents[2]
# A child that reports its pid, notes SIGTERM in a file, and exits 0 on it (as gunicorn and Celery do).
GRACEFUL = (
    "import os, signal, sys, time; d = sys.argv[1]; open(f'{d}/{os.getpid()}.pid', 'w').close()\n"
    "def stop(*_): open(f'{d}/{os.getpid()}.stopped', 'w').close(); sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "while True: time.sleep(0.05)"
)
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: time.sleep(0.05)"


def child(name: str, code: str, *args: str) -> str:
    return f"{name}={subprocess.list2cmdline([sys.executable, '-c', code, *args])}"


def supervise(*children: str, grace: float = 5) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.supervise", "--grace", str(grace), *children],
        cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def wait_for(predicate, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_stops_every_child_and_exits_0(tmp_path: Path, sig: int) -> None:
    proc = supervise(child("a", GRACEFUL, str(tmp_path)), child("b", GRACEFUL, str(tmp_path)))
    wait_for(lambda: len(list(tmp_path.glob("*.pid"))) == 2)
    pids = [int(p.stem) for p in tmp_path.glob("*.pid")]
    # As the terminal's Ctrl-C: the whole foreground group; the children are in their own sessions and are not hit.
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopping a, b" in err
    assert sorted(int(p.stem) for p in tmp_path.glob("*.stopped")) == sorted(pids)  # each got SIGTERM and exited
    assert not any(alive(pid) for pid in pids)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    proc = supervise(child("stubborn", STUBBORN), grace=0.5)
    time.sleep(1)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "killing stubborn" in err


def test_when_one_child_exits_the_others_are_stopped_and_it_exits_1(tmp_path: Path) -> None:
    proc = supervise(child("steady", GRACEFUL, str(tmp_path)), child("crash", "import sys; sys.exit(3)"))
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "crash exited (code 3); stopping the others" in err
    assert len(list(tmp_path.glob("*.pid"))) == len(list(tmp_path.glob("*.stopped"))) <= 1


def test_parse_child() -> None:
    assert parse_child("web=gunicorn -c 'a b.py'") == ("web", ["gunicorn", "-c", "a b.py"])
    with pytest.raises(Exception, match="NAME=COMMAND"):
        parse_child("gunicorn")
