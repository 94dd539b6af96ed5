"""Starting a server for an HTTP benchmark on a free loopback port, and waiting until it accepts connections."""

from __future__ import annotations

import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc: subprocess.Popen, port: int, *, timeout_s: float = 90.0, what: str = "the server") -> None:
    """Return once 127.0.0.1:port accepts a connection; kill the process and exit if it never does."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.3)
    proc.kill()
    sys.exit(f"{what} did not start")
