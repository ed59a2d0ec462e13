"""`tongfa` run as a person runs it: a real process with its own environment."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping

Run = Callable[..., subprocess.CompletedProcess[str]]


def tongfa_in(env: Mapping[str, str]) -> Run:
    """A `tongfa(*args, ok=True)` that runs the CLI in `env` and asserts its exit status."""

    def tongfa(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args],
                                capture_output=True, text=True, env=dict(env), timeout=60)
        assert (result.returncode == 0) == ok, result.stderr + result.stdout
        return result

    return tongfa
