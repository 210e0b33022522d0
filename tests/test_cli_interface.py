"""The command line as a mature checker's (issue 9): stdout is the data under ``--json``, every
JSON object has ``exit``, no option is silently ignored, heartbeats only on a terminal, summaries,
readable traces, and the small things (``--version``, ``knobs``, ITF files, ``--dask``,
``bench --quick``, the README and the walkthrough). Every test here runs in seconds."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from kvmmu.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATION, main
from kvmmu.cli.common import lemmas_text, summary_line, verdict_text
from kvmmu.progress import Heartbeat
from kvmmu.prover import Verdict

ROOT = Path(__file__).resolve().parent.parent
CASE = next((ROOT / "conformance" / "cases").rglob("*.yaml"))
SPECIAL = ["--vcpus", "special"]
STALE_PFN = ["--knob", "stale_check.mmu_notifier=false", "--notifier", "--vcpus", "sp"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# --- 2. stdout is the data under --json ---------------------------------------------------------


def test_json_stdout_stays_json_when_files_are_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    case, itf = tmp_path / "s.yaml", tmp_path / "s.itf.json"
    argv = ["--preset", "paolo", *SPECIAL, "--invariant", "no_spte_in_obsolete_root", "--json"]
    status, out, err = run(capsys, "search", *argv, "--emit-case", str(case))
    assert status == EXIT_VIOLATION and json.loads(out)["exit"] == EXIT_VIOLATION
    assert f"wrote {case}" in err and case.exists()
    status, out, err = run(capsys, "prove", *argv, "--emit-case", str(case), "--itf", str(itf))
    assert json.loads(out)["exit"] == status == EXIT_VIOLATION
    assert f"wrote {case}" in err and f"wrote {itf}" in err


def test_every_json_object_has_exit(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["knobs", "--json"],
        ["run", str(CASE), "--json"],
        ["conform", str(CASE), "--json"],
        ["diff", "--max-vcpus", "1", "--depth", "3", "--presets", "v5.16", "--json"],
    ):
        status, out, _ = run(capsys, *argv)
        assert json.loads(out)["exit"] == status, argv


# --- 3. nothing silently ignored ----------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["prove", "--engine", "kind", "--depth", "3"],
        ["prove", "--max-k", "3"],
        ["prove", "--engine", "bmc", "--max-k", "3"],
        ["prove", "--junit", "x.xml"],
        ["prove", "--json-out", "x.json"],
        ["prove", "--class", "small"],
        ["prove", "--no-manifest-rule"],
    ],
)
def test_options_a_run_cannot_use_are_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    status, out, err = run(capsys, *argv)
    assert status == EXIT_BAD_INPUT and out == ""
    assert err.startswith("kvmmu: ") and err.count("\n") == 1


def test_one_off_obligation_files_without_the_manifest_rule(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    one = tmp_path / "one.yaml"
    one.write_text(
        "format: kvmmu-proofs/1\ndescription: a one-off check\n"
        "defaults: {engine: bmc, bound: 14, config: {vcpus: [special]}}\nobligations:\n"
        "  - {id: one, variant: v5.16-rc4, invariant: no_null_deref, expect: violated}\n"
    )
    status, _, err = run(capsys, "prove", str(one))
    assert status == EXIT_BAD_INPUT and "the manifest must show every invariant" in err
    status, out, _ = run(capsys, "prove", str(one), "--no-manifest-rule", "--json")
    assert status == EXIT_OK and json.loads(out)["exit"] == EXIT_OK
    # the results once, as one table with headed columns
    status, out, _ = run(capsys, "prove", str(one), "--no-manifest-rule")
    lines = out.splitlines()
    assert lines[0].split() == [
        "obligation",
        "invariant",
        "engine",
        "expect",
        "verdict",
        "seconds",
        "result",
    ]
    assert lines[1].startswith("----------") and lines[2].split()[:5] == [
        "one",
        "no_null_deref",
        "bmc",
        "violated",
        "violated",
    ]
    assert lines[2].split()[-1] == "ok" and lines[3:] == ["1 obligations: 1 as expected, 0 not"]


# --- 4. progress and summaries ------------------------------------------------------------------


def test_heartbeat_draws_on_a_terminal_only(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    with Heartbeat("search", unit="states", stream=stream) as beat:  # not a terminal
        beat.at(100, note="depth 3")
    assert stream.getvalue() == "" and not beat.enabled
    with Heartbeat("bmc", 20, "depth", stream=stream, force=True, mininterval=0) as beat:
        beat.at(7, note="depth 7")
    drawn = stream.getvalue()
    assert "bmc" in drawn and "7/20" in drawn and "depth 7" in drawn and "depth/s" in drawn
    # under pytest stderr is no terminal: a command's stderr holds no heartbeat
    status, _, err = run(capsys, "search", *SPECIAL, "--max-depth", "4")
    assert err == "" and status != EXIT_BAD_INPUT


def test_multi_invariant_prove_ends_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    both = ["--invariant", "no_spte_in_obsolete_root", "--invariant", "no_null_deref"]
    status, out, _ = run(capsys, "prove", "--preset", "paolo", *SPECIAL, "--depth", "13", *both)
    lines = out.splitlines()
    assert re.fullmatch(r"(\d+ [a-z_]+, )*\d+ [a-z_]+ -> exit \d", lines[-1]), lines[-1]
    assert lines[-1].startswith("1 violated") and lines[-1].endswith(f"-> exit {status}")
    verdicts = [line for line in lines if re.match(r"no_\w+: ", line)]
    assert len(verdicts) == 2 and all(re.search(r"\(\d+\.\d\d s\)", v) for v in verdicts)


def test_unknown_says_how_deep_it_got_and_lemmas_are_counted() -> None:
    v = Verdict("no_stale_pfn", "unknown", "bmc", 20, 3.0, reason="timeout", reached=7)
    assert verdict_text(v).startswith("unknown (no violation up to depth 7; bound 20)")
    lemmas = ("a", "b", "c")
    p = Verdict("no_stale_pfn", "proved", "kind", 30, 1.0, k=1, lemmas=lemmas)
    assert "3 lemmas (--verbose names them)" in verdict_text(p)
    assert "lemmas a, b, c" in verdict_text(p, verbose=True) and lemmas_text(()) == ""
    assert summary_line(["proved", "violated", "proved"], 1) == "1 violated, 2 proved -> exit 1"


def test_an_unknown_run_reports_its_depth(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["prove", "--timeout", "0.001", "--invariant", "no_null_deref", "--json"]
    status, out, _ = run(capsys, *argv)
    (result,) = json.loads(out)["results"]
    assert status == 3 and result["verdict"] == "unknown" and "depth_reached" in result


# --- 5. readable traces -------------------------------------------------------------------------


def test_a_trace_shows_what_the_invariant_reads_and_the_vcpu_kinds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "prove", *STALE_PFN, "--invariant", "no_stale_pfn")
    assert status == EXIT_VIOLATION
    header = next(line for line in out.splitlines() if line.startswith("#"))
    for column in ("vcpu0 (sp)", "mn count", "seq chg", "pfn stale"):
        assert column in header
    last = next(line for line in out.splitlines() if "VIOLATES no_stale_pfn" in line)
    assert last.split()[:2] == ["9", "fault.map"]


def test_the_html_lanes_keep_step_and_state_in_view() -> None:
    from kvmmu.render import replay_states
    from kvmmu.report import CSS, lanes_html
    from kvmmu.vocab import Config, Problem, Step, make_variant
    from spec import SpecEngine

    config = Config(vcpus=("special", "sp", "tdp"))
    trace = (Step("vcpu2", "vcpu.load"), Step("zapper", "zap.lock"))
    problem = Problem(make_variant("v5.16"), config)
    replay, states = replay_states(SpecEngine(), problem, trace)
    html = lanes_html(problem.variant, config, trace, states, replay)
    fixed, moving = re.findall(r'<svg [^>]*class="lanes (fixed|moving)"', html)
    assert (fixed, moving) == ("fixed", "moving") and '<div class="sticky">' in html
    assert ".lanes-row .sticky{position:sticky;left:0" in CSS.replace("\n", "")


# --- 6. small things ----------------------------------------------------------------------------


def test_version_and_knobs_list_the_invariants(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0  # argparse's own exit, returned by main()
    assert re.fullmatch(r"kvmmu \S+\n", capsys.readouterr().out)
    status, out, _ = run(capsys, "knobs")
    assert status == EXIT_OK
    for invariant in ("no_spte_in_obsolete_root", "no_stale_pfn", "no_null_deref"):
        assert re.search(rf"^{invariant}\s+\w", out, re.M)


def test_run_names_an_itf_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    itf = tmp_path / "x.itf.json"
    argv = ["--preset", "paolo", *SPECIAL, "--invariant", "no_spte_in_obsolete_root"]
    run(capsys, "prove", *argv, "--itf", str(itf))
    status, _, err = run(capsys, "run", str(itf))
    assert status == EXIT_BAD_INPUT and "is an ITF trace" in err
    renamed = tmp_path / "trace.json"  # told apart by its content too
    renamed.write_text(itf.read_text())
    assert run(capsys, "run", str(renamed))[2].count("is an ITF trace") == 1


def test_search_with_no_cover_reached_says_none(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "search", "--max-depth", "3")
    assert "covers reached: none" in out and "covers reached: \n" not in out


def test_a_dask_connection_error_names_the_address(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("distributed")
    from kvmmu import explore

    monkeypatch.setattr(explore, "DASK_CONNECT_TIMEOUT", "1s")
    argv = ["explore", "--dask", "tcp://127.0.0.1:9", "--invariant", "no_null_deref"]
    status, _, err = run(capsys, *argv)
    assert status == EXIT_BAD_INPUT and "tcp://127.0.0.1:9" in err


def test_bench_quick_never_writes_the_committed_report() -> None:
    from bench.run import main as bench_main

    before = (ROOT / "docs" / "performance.md").read_bytes()
    for argv in (["--quick", "--out", "docs/performance.md"], ["--quick", "--plots", "docs"]):
        with pytest.raises(SystemExit) as exit_:
            bench_main([*argv, "--no-plots"])
        assert exit_.value.code == 2
    assert (ROOT / "docs" / "performance.md").read_bytes() == before


def test_the_walkthrough_uses_kvmmu_and_cites_only_the_repository() -> None:
    text = (ROOT / "docs" / "walkthrough.md").read_text()
    assert "python -m spec.parametric" not in text and "kvmmu parametric" in text
    # no absolute path, home folder or sibling folder: only files of this repository
    assert not re.search(r"(?<![\w.])(/work/|/home/|/tmp/|~/|\.\./)", text)
    for cited in re.findall(
        r"`((?:docs|spec|impl|kvmmu|proofs|conformance|bench)/[\w./-]+)`", text
    ):
        assert (ROOT / cited.rstrip(".")).exists(), cited
