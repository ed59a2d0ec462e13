"""Where a wide go-live's time goes, in one process: cProfile around staging and firing.

The rig's database, Redis and Weibo sandbox with M accounts, but no worker: this process
runs the stage and fire steps itself, under the profiler, so what the workers spend on
a go-live shows up function by function (claims, content checks, adapter rebuilds,
audit chain, connections opened after the barrier).

    .venv/bin/python -m bench.profile_wide --channels 200 [--top 40]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.rig import Rig  # noqa: E402


def profiled(label: str, top: int, fn, *args) -> None:  # type: ignore[no-untyped-def]
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    fn(*args)
    profiler.disable()
    took = time.perf_counter() - started
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative")
    stats.print_stats(top)
    print(f"===== {label}: {took * 1000:.0f} ms wall =====")
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--top", type=int, default=45)
    args = parser.parse_args()
    from orchestrator.usecases.delivery import staging

    with tempfile.TemporaryDirectory() as tmp, Rig(
        Path(tmp), weibo_accounts=args.channels, with_website=False, workers=0,
        lease_seconds=60, redrive_seconds=600,
    ) as rig:
        for proc in rig.procs:  # no scheduler either: this process does every step
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
        rig.procs.clear()
        started = time.perf_counter()
        rid = rig.approve_release(1)
        print(f"approval (create, submit, three sign-offs): "
              f"{(time.perf_counter() - started) * 1000:.0f} ms")
        # stage_release stages every channel, then (all staged, approved) fires in-line
        profiled(f"stage + fire, {args.channels} channels", args.top,
                 staging.stage_release, rig.ctx, rid)
        print(dict(rig.states()))


if __name__ == "__main__":
    main()
