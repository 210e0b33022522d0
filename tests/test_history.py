"""``kvmmu history`` (kvmmu/history.py): the kernel's K1-K12 table, its file format, its verdicts
(computed, and a row that does not come out as its obligations expect is reported), and K12's
reload count (kvmmu/reloads.py), checked against a plain enumeration of the schedules."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from impl.model import Model
from impl.state import Machine
from kvmmu.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATION, main
from kvmmu.history import load_history
from kvmmu.reloads import count, wasted_reload
from kvmmu.vocab import INVARIANTS, LIVENESS_PROPERTIES, Config, make_variant

ROOT = Path(__file__).resolve().parent.parent
HISTORY = ROOT / "docs" / "kernel-history.yaml"

PROOFS = """format: kvmmu-proofs/1
description: obligations for the history tests
defaults:
  config: {vcpus: [special, sp], notifier: true, max_zaps: null, max_invalidations: null}
obligations:
  - {id: rc4-crash, variant: v5.16-rc4, invariant: no_null_deref, expect: violated, engine: bmc,
     bound: 10, length: 7}
  - {id: v516-safe, variant: v5.16, invariant: no_null_deref, expect: proved}
  - {id: v516-crash, variant: v5.16, invariant: no_null_deref, expect: violated, engine: bmc,
     bound: 8}
  - {id: rc4-safe, variant: v5.16-rc4, invariant: no_null_deref, expect: proved}
  - {id: v515-stale, variant: v5.15, invariant: no_spte_in_obsolete_root, expect: violated,
     engine: bmc, bound: 20}
"""

ROW = """  - id: K2
    commits: [18c841e1f411]
    title: "KVM: x86: Retry page fault if MMU reload is pending and root has no sp"
    version: v5.16-rc6
    bug: a NULL dereference
    invariants: [no_null_deref]
    status: stated
    buggy: [{buggy}]
    fixed: [{fixed}]
    story: a story
"""

BENCH = """  - id: K12
    commits: [527d5cd7eece]
    title: the targeted request
    version: v5.18
    bug: every request unloads every root
    status: benchmark
    benchmark:
      config: {{vcpus: [sp], zappers: 1, max_zaps: 1}}
      depth: {depth}
    story: a story
"""
GOOD = ROW.format(buggy="rc4-crash", fixed="v516-safe")
NOT_STATED = GOOD.replace("    status: stated\n", "    status: not stated\n").replace(
    "    fixed: [v516-safe]\n", ""
)


def history_file(tmp_path: Path, *rows: str) -> Path:
    (tmp_path / "proofs.yaml").write_text(PROOFS)
    path = tmp_path / "history.yaml"
    head = "format: kvmmu-history/1\ndescription: test\nproofs: [proofs.yaml]\nrows:\n"
    path.write_text(head + "".join(rows))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["history", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# --- the committed history -----------------------------------------------------------------------


def test_the_committed_history_has_every_k_case_once_in_order() -> None:
    history = load_history(HISTORY)
    assert [r.id for r in history.rows] == [f"K{n}" for n in range(1, 13)]
    by_id = {r.id: r for r in history.rows}
    assert {r.id for r in history.rows if r.status == "stated"} == {"K1", "K2", "K4", "K6"}
    assert by_id["K12"].status == "benchmark"
    for row in history.rows:
        assert row.story and row.commits and row.bug
        if row.status == "not stated":
            assert row.reason and not row.buggy and not row.fixed
        if row.status == "stated":
            # the invariants it names are the model's, and each form checks all of them
            assert set(row.invariants) <= {*INVARIANTS, *LIVENESS_PROPERTIES}
            for form in (row.buggy, row.fixed):
                assert {ob.invariant for ob in form} == set(row.invariants)
            assert all(ob.expect == "violated" for ob in row.buggy)
            assert all(ob.expect == "proved" for ob in row.fixed)


def test_the_generated_table_and_the_readme_excerpt_agree() -> None:
    text = (ROOT / "docs" / "kernel-history.md").read_text()
    table = [line for line in text.splitlines() if re.match(r"\| K\d", line)]
    assert [line.split(" | ")[0] for line in table] == [f"| K{n}" for n in range(1, 13)]
    readme = (ROOT / "README.md").read_text().split("## The kernel's history", 1)[1]
    excerpt = [
        line for line in readme.split("\n## ", 1)[0].splitlines() if re.match(r"\| K\d", line)
    ]
    assert excerpt and all(line in table for line in excerpt)


@pytest.mark.slow  # about 15 s: every stated row of the committed file
def test_the_committed_table_is_what_kvmmu_history_writes(tmp_path: Path) -> None:
    out = tmp_path / "kernel-history.md"
    assert main(["history", str(HISTORY), "--markdown", str(out)]) == EXIT_OK
    assert out.read_text() == (ROOT / "docs" / "kernel-history.md").read_text()


# --- running rows --------------------------------------------------------------------------------


def test_a_stated_row_runs_its_obligations(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, str(HISTORY), "--only", "k2")
    assert status == EXIT_OK
    assert re.search(r"K2 .* no_null_deref .* violated in 7 steps .* proved \(k = \d+\)", out)
    assert "stated: as expected" in out and "1 of 1 checked as expected" in out


def test_a_row_not_stated_says_why_and_runs_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    row = NOT_STATED.replace("    buggy: [rc4-crash]\n", "    reason: needs a new actor\n")
    path = history_file(tmp_path, row.replace("[no_null_deref]", "[no_such_thing_yet]"))
    status, out, _ = run(capsys, str(path), "--json")
    (data,) = json.loads(out)["rows"]
    assert status == EXIT_OK and data["passed"] is None and data["buggy"] == data["fixed"] == []
    assert data["reason"] == "needs a new actor"
    status, out, _ = run(capsys, str(path))
    assert "no_such_thing_yet (not in the model yet)" in out
    assert "not stated: needs a new actor" in out and "0 of 0 checked" in out


def test_a_row_whose_obligations_come_out_otherwise_is_reported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # v5.16 never crashes (the "buggy" form holds) and v5.16-rc4 does (the "fix" is violated)
    path = history_file(tmp_path, ROW.format(buggy="v516-crash", fixed="rc4-safe"))
    status, out, _ = run(capsys, str(path))
    assert status == EXIT_VIOLATION
    assert "stated: NOT as expected" in out
    assert "K2: NOT as expected: v516-crash: expected violated, got " in out
    assert "K2: NOT as expected: rc4-safe: expected proved, got violated" in out


def test_json_has_every_row_its_verdicts_and_exit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = (GOOD, BENCH.format(depth=8))
    status, out, _ = run(capsys, str(history_file(tmp_path, *rows)), "--json")
    data = json.loads(out)
    assert status == data["exit"] == EXIT_OK
    assert (data["passed"], data["failed"], data["not_stated"]) == (2, 0, 0)
    k2, k12 = data["rows"]
    assert k2["passed"] is True and k2["mismatches"] == []
    assert k2["buggy"][0]["verdict"] == "violated" and len(k2["buggy"][0]["trace"]) == 7
    assert k2["fixed"][0]["verdict"] == "proved" and k2["fixed"][0]["command"].startswith("kvmmu")
    reload, targeted = k12["benchmark"]
    assert (reload["request"], reload["wasted"]) == ("reload", 1)
    assert (targeted["request"], targeted["wasted"]) == ("free_obsolete", 0)


def test_a_benchmark_that_shows_nothing_is_not_as_expected(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # 7 steps are one too few for a request to find a freshly loaded root
    status, out, _ = run(capsys, str(history_file(tmp_path, BENCH.format(depth=7))))
    assert status == EXIT_VIOLATION
    assert "request: reload wastes no reload here" in out


def test_markdown_is_written_with_the_stories(tmp_path: Path) -> None:
    path = history_file(tmp_path, GOOD)
    out = tmp_path / "h.md"
    assert main(["history", str(path), "--markdown", str(out)]) == EXIT_OK
    text = out.read_text()
    assert (
        "| K2 | 18c841e1f411 | a NULL dereference | no_null_deref | violated in 7 steps |" in text
    )
    assert "## K2: KVM: x86: Retry page fault" in text and "a story" in text
    assert "`rc4-crash` (proofs.yaml; v5.16-rc4, vcpus special,sp): violated in 7 steps" in text


# --- bad input: FILE:LINE: FIELD: message, exit 2, before any work --------------------------------


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (ROW.format(buggy="nope", fixed="v516-safe"), "rows[1].buggy[1]", "unknown obligation"),
        (ROW.format(buggy="v516-safe", fixed="v516-safe"), "rows[1].buggy[1]", "expects proved"),
        (ROW.format(buggy="rc4-crash", fixed="rc4-crash"), "rows[1].fixed[1]", "expects violated"),
        (ROW.format(buggy="v515-stale", fixed="v516-safe"), "rows[1].buggy[1]", "not one of"),
        (GOOD.replace("id: K2", "id: X2"), "rows[1].id", "expected K and a number"),
        (GOOD.replace("status: stated", "status: done"), "rows[1].status", "expected one of"),
        (GOOD + "    reason: why\n", "rows[1].reason", "a stated row has no reason"),
        (GOOD + "    colour: red\n", "rows[1].colour", "unknown key"),
        (GOOD.replace("[18c841e1f411]", "[v5.16]"), "rows[1].commits[1]", "commit id"),
        (GOOD.replace("[no_null_deref]", "[no_such]"), "rows[1].invariants", "unknown invariant"),
        (NOT_STATED, "rows[1].buggy", "a not stated row has no buggy"),
        (NOT_STATED.replace("    buggy: [rc4-crash]\n", ""), "rows[1]", "needs 'reason'"),
        (BENCH.format(depth=0), "rows[1].benchmark.depth", ">= 1"),
    ],
)
def test_bad_history_files_are_reported_where_they_are_wrong(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, row: str, field: str, message: str
) -> None:
    path = history_file(tmp_path, row)
    status, out, err = run(capsys, str(path))
    assert status == EXIT_BAD_INPUT and out == ""
    assert re.match(rf"kvmmu: {re.escape(str(path))}:\d+: {re.escape(field)}: .*{message}", err), (
        err
    )


def test_bad_invocations_are_refused_before_any_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = history_file(tmp_path, GOOD)
    status, out, err = run(capsys, str(path), "--markdown", str(tmp_path / "no" / "h.md"))
    assert status == EXIT_BAD_INPUT and out == "" and "does not exist" in err
    status, _, err = run(capsys, str(path), "--only", "K9")
    assert status == EXIT_BAD_INPUT and "K9: no such row" in err
    status, _, err = run(capsys, str(tmp_path / "missing.yaml"))
    assert status == EXIT_BAD_INPUT and "missing.yaml" in err
    (tmp_path / "h2.yaml").write_text(path.read_text().replace("kvmmu-history/1", "x/2"))
    status, _, err = run(capsys, str(tmp_path / "h2.yaml"))
    assert status == EXIT_BAD_INPUT and "h2.yaml:1: format: unsupported format" in err


def test_help_names_the_table_and_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == EXIT_OK
    assert "kvmmu-history/1" in out and "--only" in out and "--markdown" in out
    assert "Exit status 0" in out


# --- K12's count ---------------------------------------------------------------------------------


def _enumerate(model: Model, m: Machine, depth: int) -> tuple[int, int, int]:
    """Schedules, unloads and wasted reloads by walking every schedule (no graph, no reuse)."""
    successors = model.successors(m)
    if depth == 0 or not successors:
        return 1, 0, 0
    paths = unloads = wasted = 0
    for step, after in successors:
        p, u, w = _enumerate(model, after, depth - 1)
        paths += p
        unloads += u + (p if step.name == "vcpu.unload" else 0)
        wasted += w + (p if wasted_reload(model, m, step, after) else 0)
    return paths, unloads, wasted


@pytest.mark.parametrize("request_kind", ["reload", "free_obsolete"])
def test_the_reload_count_is_the_count_of_every_schedule(request_kind: str) -> None:
    config = Config(vcpus=("sp",), zappers=1, max_zaps=1)
    c = count(config, request_kind, 9)
    model = Model.of(make_variant("v5.16", {"request": request_kind}), config)
    assert (c.schedules, c.unloads, c.wasted) == _enumerate(model, model.initial(), 9)
    # the targeted request never drops a valid sp root; the old one does (K12)
    assert (c.wasted > 0) == (request_kind == "reload")
