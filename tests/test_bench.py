"""The benchmark command's smoke test: ``python -m bench --quick`` runs and writes its table.

No timing is asserted (the figures depend on the machine); only that the command works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
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


def test_every_mutant_applies_to_this_tree() -> None:
    # the mutation run (python -m bench.mutants) patches text: keep its list in step with the code
    from bench.mutants import MUTANTS, verify

    assert verify() == []
    assert len([m for m in MUTANTS if not m.equivalent]) >= 40
    assert {m.path.split("/", 1)[0] for m in MUTANTS} == {"spec", "impl"}
    assert all(m.equivalent.strip() or m.what for m in MUTANTS)


def test_a_mutant_is_caught_where_the_tree_is_not() -> None:
    # the item-9 mutant against the case that pins it: the baseline passes, the mutant fails
    from bench.mutants import MUTANTS, Check, run_one

    case = "conformance/cases/knobs/reload_request_check_sp_keeps_bit.yaml"
    check = Check("conform", ("conform", case, "--json"))
    mutant = next(m for m in MUTANTS if m.name == "impl.check.clears_bit_on_every_check")
    assert not run_one(None, [check], all_checks=False).caught
    outcome = run_one(mutant, [check], all_checks=False)
    assert outcome.caught_by == ["conform"]
    assert "reload_request_check_sp_keeps_bit" in outcome.details["conform"]
