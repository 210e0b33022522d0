"""Proof obligations: the manifest rules, the small class run for real, and the reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kvmmu.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATION, main
from kvmmu.obligations import load_file, load_manifest, run
from kvmmu.yamlio import InputError

ROOT = Path(__file__).resolve().parent.parent
PROOFS = ROOT / "proofs"

SMALL = [ob for ob in load_manifest([PROOFS]) if ob.klass == "small"]
# one obligation of each expected verdict stays in the fast suite; the rest are long checks
# (kvmmu prove proofs/ runs them all, and so does pytest -m slow)
_FAST = {next(ob.id for ob in SMALL if ob.expect == e) for e in {ob.expect for ob in SMALL}}
_PARAMS = [
    pytest.param(ob, id=ob.id, marks=() if ob.id in _FAST else pytest.mark.slow) for ob in SMALL
]


@pytest.mark.parametrize("obligation", _PARAMS)
def test_small_obligation_gives_its_expected_verdict(obligation: object) -> None:
    from kvmmu.obligations import Obligation

    assert isinstance(obligation, Obligation)
    outcome = run(obligation)
    assert outcome.mismatch is None, outcome.mismatch
    if outcome.verdict.verdict in ("proved", "holds"):
        # never vacuous: every required cover target was reached within the bound
        assert all(outcome.verdict.cover.get(t) for t in outcome.verdict.required)


def test_every_invariant_is_expected_violated_somewhere(tmp_path: Path) -> None:
    seed = (PROOFS / "seed.yaml").read_text()
    (tmp_path / "seed.yaml").write_text(seed)
    with pytest.raises(InputError, match=r"none expects .*no_use_after_free.* violated"):
        load_manifest([tmp_path])


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "obligations.yaml"
    path.write_text("format: kvmmu-proofs/1\ndescription: test\n" + body)
    return path


@pytest.mark.parametrize(
    ("body", "line", "field", "message"),
    [
        ("obligations: []\n", 3, "obligations", "no obligations"),
        (
            "obligations:\n  - {id: a, variant: v5.16, invariant: no_bugs, expect: proved}\n",
            4,
            "obligations[1].invariant",
            "unknown invariant",
        ),
        (
            "obligations:\n  - {id: a, variant: v5.16, invariant: no_null_deref, expect: fine}\n",
            4,
            "obligations[1].expect",
            "expected one of",
        ),
        (
            "defaults: {engine: smt}\nobligations:\n"
            "  - {id: a, variant: v5.16, invariant: no_null_deref, expect: proved}\n",
            3,
            "defaults.engine",
            "expected one of bmc, kind",
        ),
        (
            "obligations:\n  - id: a\n    variant: v5.16\n    invariant: no_null_deref\n"
            "    expect: proved\n    depth: 3\n",
            8,
            "obligations[1].depth",
            "unknown key",
        ),
        (
            "obligations:\n  - {id: a, variant: v5.16, invariant: no_null_deref, "
            "expect: not_inductive, engine: bmc}\n",
            4,
            "obligations[1].expect",
            "never answers",
        ),
        # issue 10: null never falls back to a built-in default, an id is never empty, and a
        # timeout is a finite number of seconds within range
        *(
            (
                f"obligations:\n  - {{id: a, variant: v5.16, invariant: no_null_deref, "
                f"expect: proved, {key}: null}}\n",
                4,
                f"obligations[1].{key}",
                "leave the key out",
            )
            for key in ("class", "config", "engine", "bound", "timeout", "length")
        ),
        (
            "defaults: {config: null}\nobligations:\n"
            "  - {id: a, variant: v5.16, invariant: no_null_deref, expect: proved}\n",
            3,
            "defaults.config",
            "leave the key out",
        ),
        (
            "obligations:\n  - {id: '', variant: v5.16, invariant: no_null_deref, "
            "expect: proved}\n",
            4,
            "obligations[1].id",
            "empty",
        ),
        (
            "obligations:\n  - {id: a, variant: v5.16, invariant: no_null_deref, "
            "expect: proved, timeout: .nan}\n",
            4,
            "obligations[1].timeout",
            "not a plain decimal number",
        ),
        (
            "obligations:\n  - {id: a, variant: v5.16, invariant: no_null_deref, "
            "expect: proved, timeout: " + "9" * 51 + "}\n",
            4,
            "obligations[1].timeout",
            "more than 18 digits",
        ),
        (
            "obligations:\n  - {id: a, variant: v5.16, invariant: no_null_deref, "
            "expect: proved, timeout: 1.0e+308}\n",
            4,
            "obligations[1].timeout",
            "at most",
        ),
    ],
)
def test_bad_obligation_files_name_file_line_and_field(
    tmp_path: Path, body: str, line: int, field: str, message: str
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(InputError) as caught:
        load_file(path)
    err = caught.value
    assert (err.file, err.line, err.field) == (str(path), line, field)
    assert message in err.message


@pytest.mark.slow  # minutes: a long check (pytest -m slow, run by .ci/run)
def test_reports_and_exit_status(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    proofs = tmp_path / "proofs"
    proofs.mkdir()
    whatif = (PROOFS / "whatif.yaml").read_text()
    (proofs / "whatif.yaml").write_text(whatif)
    (proofs / "more.yaml").write_text(
        "format: kvmmu-proofs/1\ndescription: the remaining invariant, and a wrong guess\n"
        "defaults: {engine: bmc, bound: 14, config: {vcpus: [special]}}\nobligations:\n"
        "  - {id: rc4, variant: v5.16-rc4, invariant: no_null_deref, expect: violated}\n"
        "  - {id: wrong, variant: v5.16, invariant: no_null_deref, expect: violated}\n"
    )
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    argv = ["prove", str(proofs), "--junit", str(junit), "--json-out", str(report)]
    assert main(argv) == EXIT_VIOLATION  # 'wrong' expects a violation that does not exist
    out = capsys.readouterr().out
    # the results once, as one table with headed columns (no line per obligation before it)
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
    assert sum(1 for line in lines if line.startswith("wrong ")) == 1
    assert next(line for line in lines if line.startswith("wrong ")).split()[6] == "FAIL:"
    assert lines[-1] == "11 obligations: 10 as expected, 1 not"
    suite = ET.parse(junit).getroot()
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["wrong"]
    assert suite.get("tests") == str(len(list(suite.iter("testcase"))))
    data = json.loads(report.read_text())
    assert data["failed"] == 1
    row = next(r for r in data["obligations"] if r["id"] == "rc4")
    assert row["verdict"] == "violated" and row["z3"] and row["seed"] == 0
    assert row["command"].startswith("kvmmu prove --preset v5.16-rc4 --vcpus special")
    (proofs / "more.yaml").write_text((proofs / "more.yaml").read_text().split("  - {id: wrong")[0])
    assert main(["prove", str(proofs)]) == EXIT_OK
    assert main(["prove", str(proofs), "--preset", "v5.16"]) == EXIT_BAD_INPUT
