"""The benchmark command's smoke test: ``python -m bench --quick`` runs and writes its table.

No timing is asserted (the figures depend on the machine); only that the command works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # minutes: the main job runs it (pytest -m slow)
def test_quick_bench_writes_a_table(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-plots", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    assert text.startswith("# Performance")
    assert "| cores (nproc) |" in text and "| z3 |" in text
    assert "## BMC by depth" in text and "| depth 8 |" in text
    assert "| configuration | states off | states on |" in text
    raw = json.loads(out.with_suffix(".json").read_text())
    assert raw["quick"] is True
    assert all(run["status"] == "ok" for run in raw["runs"]), raw["runs"]
    assert any(run["group"] == "symmetry" and run["result"]["states"] for run in raw["runs"])
