"""A CLI run whose stderr is a real pseudo-terminal (progress and status lines are drawn only on a terminal)."""
from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios

from tests.conftest import ROOT


def run_on_a_terminal(command: list[str], columns: int = 200) -> tuple[int, str, str]:
    """(exit code, stdout, what the child wrote to its terminal) of one run; stdout is a pipe, stderr a 40-row
    pseudo-terminal, drained while the child runs (a full pty buffer would block it)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower,
                            text=True)
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    stdout = proc.stdout.read()
    return proc.wait(), stdout, seen.decode("utf-8", "replace")
