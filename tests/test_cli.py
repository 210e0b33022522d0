"""The command line: verdicts, exit statuses, JSON, counterexample-to-case, and bad input.

The CLI runs in-process (``kvmmu.cli.main``) for speed; what it prints is captured.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from impl import ImplEngine
from kvmmu.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATION, main
from kvmmu.conformance.case import load_case
from kvmmu.conformance.check import check_case
from kvmmu.vocab import INVARIANTS

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "conformance" / "cases"
SEED = ["--vcpus", "special,sp"]


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    status = main([*argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


def results(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    rows = doc["results"]
    assert isinstance(rows, list)
    return {row["invariant"]: row for row in rows}


def test_prove_paolo_finds_the_shortest_counterexample(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["prove", "--preset", "paolo", *SEED, "--invariant", "no_spte_in_obsolete_root"]
    status, doc = run_json(capsys, *argv, "--depth", "20")
    assert status == EXIT_VIOLATION
    row = results(doc)["no_spte_in_obsolete_root"]
    assert row["verdict"] == "violated"
    trace = row["trace"]
    assert isinstance(trace, list) and len(trace) == 13
    assert trace[-1] == {"actor": "vcpu0", "step": "fault.map"}


def test_prove_v5_16_holds_with_every_cover_target(capsys: pytest.CaptureFixture[str]) -> None:
    # two invariants (each is checked on its own): the covers are the same for every one
    two = ["--invariant", "no_spte_in_obsolete_root", "--invariant", "no_null_deref"]
    status, doc = run_json(capsys, "prove", "--preset", "v5.16", *SEED, "--depth", "20", *two)
    assert status == EXIT_OK
    rows = results(doc)
    assert set(rows) == {"no_spte_in_obsolete_root", "no_null_deref"}
    for row in rows.values():
        assert row["verdict"] == "holds"
        assert row["depth"] == 20
        cover = row["cover"]
        assert isinstance(cover, dict)
        # the notifier is off, so a notifier retry is not required; every other target is reached
        assert {t for t, reached in cover.items() if not reached} <= {"retry.notifier"}
        assert cover["fault.map"] and cover["retry.obsolete"] and cover["enter.after_reload"]


def test_prove_readable_report_shows_lanes(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["prove", "--preset", "paolo", *SEED, "--invariant", "no_spte_in_obsolete_root"])
    out = capsys.readouterr().out
    assert status == EXIT_VIOLATION
    assert "violated in 13 steps" in out
    assert "VIOLATES no_spte_in_obsolete_root" in out
    header = next(line for line in out.splitlines() if line.startswith("#"))
    assert "vcpu0" in header and "zapper" in header and "gen" in header and "lock" in header


def test_too_small_a_bound_is_vacuous_not_a_pass(capsys: pytest.CaptureFixture[str]) -> None:
    # a retry because of an obsolete root needs a whole zap inside a fault: 13 steps at least
    status, doc = run_json(capsys, "prove", *SEED, "--depth", "8", "--invariant", "no_null_deref")
    assert status == 4
    assert results(doc)["no_null_deref"]["verdict"] == "vacuous"


def test_emitted_counterexample_replays_on_impl(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "cex.yaml"
    argv = ["prove", "--preset", "paolo", *SEED, "--invariant", "no_spte_in_obsolete_root"]
    assert main([*argv, "--emit-case", str(path)]) == EXIT_VIOLATION
    capsys.readouterr()
    case = load_case(path)
    assert case.expect.violated["no_spte_in_obsolete_root"] == len(case.schedule) == 13
    result = check_case(case, ImplEngine())
    assert result.passed, result.mismatches


def test_emitted_case_of_a_knob_variant_names_its_knobs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "cex.yaml"
    argv = ["prove", "--knob", "stale_check.mmu_notifier=false", "--vcpus", "sp", "--notifier"]
    assert main([*argv, "--invariant", "no_stale_pfn", "--emit-case", str(path)]) == 1
    capsys.readouterr()
    document = yaml.safe_load(path.read_text())
    assert document["variant"] == {"base": "v5.16", "knobs": {"stale_check.mmu_notifier": False}}
    assert check_case(load_case(path), ImplEngine()).passed


def test_search_agrees_on_the_seed(capsys: pytest.CaptureFixture[str]) -> None:
    status, doc = run_json(capsys, "search", "--preset", "paolo", *SEED)
    assert status == EXIT_VIOLATION
    trace = results(doc)["no_spte_in_obsolete_root"]["trace"]
    assert isinstance(trace, list) and len(trace) == 13
    status, doc = run_json(capsys, "search", "--preset", "v5.16", *SEED)
    assert status == EXIT_OK
    assert all(row["verdict"] == "holds" for row in results(doc).values())


def test_run_passes_and_fails_on_its_expectation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    case = CASES / "seed" / "paolo_special.yaml"
    assert main(["run", str(case), "--engine", "both"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "VIOLATED no_spte_in_obsolete_root" in out and "PASS" in out
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(case.read_text().replace("no_spte_in_obsolete_root: 13", "no_stale_pfn: 13"))
    assert main(["run", str(wrong)]) == EXIT_VIOLATION
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
def test_conform_summarizes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    shutil.copytree(CASES / "seed", tmp_path / "seed")
    status, doc = run_json(capsys, "conform", str(tmp_path))
    assert status == EXIT_OK
    cases = doc["cases"]
    assert isinstance(cases, int) and cases > 0
    assert doc["failed"] == 0 and doc["passed"] == 2 * cases


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "no/such/case.yaml"], "no/such/case.yaml"),
        (["run", str(ROOT / "tests/data/bad/unknown_actor.yaml")], "unknown_actor.yaml:"),
        (["conform", "no/such/dir"], "no such file or directory"),
        (["prove", "--preset", "v9.99"], "unknown preset 'v9.99'"),
        (["prove", "--knob", "zap.yield=maybe"], "zap.yield"),
        (["prove", "--knob", "nonsense"], "KNOB=VALUE"),
        (["prove", "--vcpus", "special,pae"], "unknown root kind 'pae'"),
        (["prove", "--invariant", "no_bugs"], "unknown invariant 'no_bugs'"),
        (["prove", "--max-zaps", "many"], "--max-zaps"),
        (["prove", "--variant", str(ROOT / "tests/data/bad/variant_unknown_knob.yaml")], ":"),
    ],
)
def test_bad_input_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    assert main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("kvmmu: ") and expected in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_variant_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    variant = tmp_path / "no-request-check.yaml"
    variant.write_text("base: v5.16\nknobs:\n  stale_check.reload_request: none\n")
    argv = ["prove", "--variant", str(variant), *SEED, "--invariant", "no_spte_in_obsolete_root"]
    status, doc = run_json(capsys, *argv)
    assert status == EXIT_VIOLATION
    assert doc["variant"]["knobs"]["stale_check.reload_request"] == "none"  # type: ignore[index]


def test_knobs_lists_the_vocabulary(capsys: pytest.CaptureFixture[str]) -> None:
    status, doc = run_json(capsys, "knobs")
    assert status == EXIT_OK
    assert doc["invariants"] == list(INVARIANTS)
    assert "v5.16" in doc["presets"]  # type: ignore[operator]


def test_parametric_is_a_kvmmu_command(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["parametric", "--preset", "paolo", "--invariant", "no_spte_in_obsolete_root"]
    argv += ["--kinds", "special", "--max-k", "2"]  # one kind of d: seconds, not minutes
    assert main(argv) == EXIT_VIOLATION
    assert "violated (any number of vCPUs" in capsys.readouterr().out
    assert main(["parametric", "--preset", "v9"]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.startswith("kvmmu parametric: unknown preset")
