"""Every benchmark under bench/ starts as the README shows it: its imports,
settings and command line hold (the figures themselves are printed by runs,
never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize("script", sorted(path.name for path in BENCH.glob("*.py")))
def test_each_benchmark_starts_and_explains_its_options(script):
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=120, cwd=BENCH.parent
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:") and script in done.stdout
