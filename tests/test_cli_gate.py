"""The command line's half of the input gate (issue 10, items 4-7): numeric options checked as
they are parsed, knobs given once, and output paths checked before any work, written all
together and atomically, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmmu.cli import main
from kvmmu.outputs import write_atomically

ROOT = Path(__file__).resolve().parent.parent
PROOFS = str(ROOT / "proofs")
INV = ["--invariant", "no_null_deref"]


@pytest.fixture(autouse=True)
def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command line here is bad: none may reach an engine."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the engine ran on a bad command line")

    monkeypatch.setattr("kvmmu.prover.check", refuse)
    monkeypatch.setattr("kvmmu.explore.explore", refuse)
    monkeypatch.setattr("kvmmu.obligations.run", refuse)
    monkeypatch.setattr("spec.why.analyse", refuse)
    monkeypatch.setattr("impl.explore", refuse)
    monkeypatch.setattr("kvmmu.differential.sweep", refuse)


BAD_NUMBERS = [
    *(["prove", "--timeout", t] for t in ("nan", "inf", "1e308", "-1", "0", "soon")),
    ["prove", "--engine", "kind", "--max-k", "-1"],
    ["prove", "--depth", "0"],
    ["prove", "--depth", "99999999999999999999"],
    ["prove", "--zappers", "3"],
    ["prove", "--max-zaps", "-1"],
    ["prove", "--max-invalidations", "1e9"],
    ["why", *INV, "--timeout", "nan"],
    ["why", *INV, "--depth", "-5"],
    ["explore", "--timeout", "inf"],
    ["explore", "--max-k", "-1"],
    ["explore", "--jobs", "0"],
    ["search", "--max-depth", "0"],
    ["diff", "--max-vcpus", "4"],
    ["diff", "--depth", "nan"],
    ["parametric", "--timeout", "nan"],
    ["parametric", "--max-k", "-1"],
    # an empty value is given, not "the default"
    ["prove", "--preset", ""],
    ["diff", "--presets", ""],
    ["explore", "--max-zaps", ""],
    ["explore", "--dask", ""],
]


@pytest.mark.parametrize("argv", BAD_NUMBERS, ids=" ".join)
def test_numeric_options_are_checked_when_parsed(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("argv", "part"),
    [
        (["prove", "--knob", "zap.yield=true", "--knob", "zap.yield=false"], "given twice"),
        (["explore", "--knob", "zap.yield=true", "--knob", "zap.yield=false"], "given twice"),
        (["prove", "--knob", "zap.yield="], "--knob zap.yield=: no value after '=' (false|true)"),
        (["prove", "--knob", "zap.yield=yes"], "not 'yes'"),
        (["parametric", "--knob", "zap.yield=true", "--knob", "zap.yield=true"], "given twice"),
    ],
)
def test_knobs_are_given_once_with_a_value(
    argv: list[str], part: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert part in capsys.readouterr().err


def test_control_characters_on_the_command_line_are_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["prove", "--knob", "\x1b[31mx\nkvmmu: fake=1"]) == 2
    assert main(["prove", "--engine", "\x1b[2J"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b" in err
    assert "\nkvmmu: fake" not in err


# --- output paths ---------------------------------------------------------------------------


def _bad_outputs(tmp: Path) -> list[tuple[list[str], str]]:
    return [
        (["prove", PROOFS, "--json-out", str(tmp / "ok.json"), "--junit", "/proc/x"], "/proc"),
        (["prove", PROOFS, "--json-out", str(tmp)], "is a folder"),
        (["prove", PROOFS, "--json-out", ""], "empty path"),
        (["prove", PROOFS, "--junit", str(tmp / "new" / "j.xml")], "does not exist"),
        (["prove", PROOFS, "--junit", "/dev/null"], "not a regular file"),
        (["prove", PROOFS, "--json-out", str(tmp / "a"), "--junit", str(tmp / "a")], "same file"),
        (["prove", "--emit-case", "/proc/x"], "/proc"),
        (["prove", "--itf", str(tmp / "new" / "t.json")], "does not exist"),
        (["prove", "--json-out", str(tmp / "r.json")], "only with obligation files"),
        (["search", "--emit-case", ""], "empty path"),
        (["search", "--itf", "/proc/x"], "/proc"),
        (["explore", "--html", "/proc/x"], "/proc"),
        (["explore", "--html", ""], "empty path"),
        (["explore", "--html", str(tmp / "new" / "r.html")], "does not exist"),
        (["explore", "--sweep", ""], "empty path"),
        (["prove", "--variant", ""], "empty path"),
        (["run", ""], "empty path"),
    ]


def test_bad_output_paths_stop_the_run_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, part in _bad_outputs(tmp_path):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert part in err, (argv, err)
        assert sorted(tmp_path.iterdir()) == [], argv  # nothing written, no folder created


def test_outputs_are_written_all_or_nothing(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "gone" / "b.xml"
    with pytest.raises(OSError):
        write_atomically({first: "a", second: "b"})
    assert sorted(tmp_path.iterdir()) == []  # neither file, nor a temporary one
    first.write_text("old")
    write_atomically({first: "new", tmp_path / "c.txt": "c"})
    assert first.read_text() == "new" and (tmp_path / "c.txt").read_text() == "c"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "c.txt"]
