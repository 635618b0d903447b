"""Pinning a benchmark's server and clients to separate cores (2-core machines here), so
that one side's load does not blur the other's figures."""

from __future__ import annotations

import os

SERVER_CORE, CLIENT_CORE = 0, 1


def pin_to(core: int, pid: int = 0) -> bool:
    """Pin a process (this one by default, and the threads it starts later) to one core.
    False when the machine has one core or the system refuses."""
    if (os.cpu_count() or 1) < 2:
        return False
    try:
        os.sched_setaffinity(pid, {core})
    except (AttributeError, OSError):
        return False
    return os.sched_getaffinity(pid) == {core}
