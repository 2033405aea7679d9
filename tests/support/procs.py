"""Child Python processes for multi-process tests: start them, wait for all, never leak."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence


def run_scripts(
    code: str,
    argvs: Sequence[Sequence[str]],
    *,
    timeout: float,
    before_wait: Callable[[], None] | None = None,
) -> None:
    """Run ``python -c code *argv`` once per argv, concurrently; each must exit 0.

    ``before_wait`` runs once every process has started (e.g. to release a barrier).
    Processes still running when this returns or raises are killed.
    """
    procs = [
        subprocess.Popen([sys.executable, "-c", code, *argv], stderr=subprocess.PIPE, text=True)
        for argv in argvs
    ]
    try:
        if before_wait is not None:
            before_wait()
        for p in procs:
            _, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
