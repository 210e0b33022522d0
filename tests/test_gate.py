"""The input gate (``kvmmu.yamlio.load_yaml``): every file the tool reads passes it, and each
failure found by fuzzing (issue 10, items 1-4, 6 and 7) is a clean ``FILE:LINE: FIELD: message``
instead of an interpreter error, a hang or a silent reinterpretation."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from kvmmu.yamlio import MAX_BYTES, MAX_DEPTH, InputError, load_variant_file, load_yaml

BOMB = 'l0: &l0 "lol"\n' + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9)
)

# variant file text -> (line, field, a part of the message)
REFUSED: dict[str, tuple[str, int, str, str]] = {
    # item 1: values PyYAML cannot build
    "date": ("description: 2021-13-45\n", 1, "description", "reads as a date"),
    "datetime": ("description: 2021-12-10 25:61:00\n", 1, "description", "reads as a date"),
    "tag-timestamp": ("description: !!timestamp 2021-02-30\n", 1, "description", "tags"),
    "tag-timestamp-foo": ("name: x\ndescription: !!timestamp foo\n", 2, "description", "tags"),
    "tag-int-abc": ("name: !!int abc\n", 1, "name", "tags"),
    "tag-int-0x": ("name: !!int 0x\n", 1, "name", "tags"),
    "tag-int-0b2": ("name: !!int 0b2\n", 1, "name", "tags"),
    "tag-int-empty": ("name: !!int ''\n", 1, "name", "tags"),
    "tag-float": ("name: !!float x\n", 1, "name", "tags"),
    "tag-float-empty": ("name: !!float ''\n", 1, "name", "tags"),
    "tag-bool": ("knobs: {zap.yield: !!bool maybe}\n", 1, "knobs.zap.yield", "tags"),
    "digits": ("unknown: " + "7" * 5000 + "\n", 1, "unknown", "more than 18 digits"),
    # item 2: recursion
    "self-list": ("loop: &a [*a]\n", 1, "loop", "anchors and aliases"),
    "self-map": ("&m {k: *m}\n", 1, "(document)", "anchors and aliases"),
    "deep-lists": ("x: " + "[" * 1000 + "]" * 1000 + "\n", 1, "(document)", "nested deeper"),
    "deep-block": ("x:\n" + "- " * 1000 + "a\n", 2, "x" + "[1]" * (MAX_DEPTH - 1), "deeper"),
    "deep-maps": ("{a: " * 5000 + "1" + "}" * 5000 + "\n", 1, "(document)", "nested deeper"),
    # item 3: the alias bomb, refused at its first anchor
    "alias-bomb": (BOMB, 1, "l0", "anchors and aliases"),
    "merge": ("base: v5.16\nknobs: {<<: {zap.yield: true}}\n", 2, "knobs", "merge keys"),
    # item 4: no nan, inf or huge numbers
    "nan": ("name: .nan\n", 1, "name", "not a plain decimal number"),
    "inf": ("name: -.inf\n", 1, "name", "not a plain decimal number"),
    "float-overflow": ("name: 1.0e+999\n", 1, "name", "too large a number"),
    # item 6: YAML 1.1 words and numbers are not silently converted
    "yes": ("knobs: {zap.yield: yes}\n", 1, "knobs.zap.yield", "not a boolean here"),
    "off": ("knobs:\n  zap.yield: off\n", 2, "knobs.zap.yield", "not a boolean here"),
    "True": ("knobs: {zap.yield: True}\n", 1, "knobs.zap.yield", "not a boolean here"),
    "sexagesimal": ("name: 1:20\n", 1, "name", "base-60"),
    "hex": ("name: 0x1F\n", 1, "name", "not a plain decimal number"),
    "octal": ("name: 010\n", 1, "name", "not a plain decimal number"),
    "exponent": ("name: 1e3\n", 1, "name", "not a plain decimal number"),
    "Null": ("name: NULL\n", 1, "name", "write null"),
    # item 7: control characters
    "escape-in-value": ('description: "red \\e[31m"\n', 1, "description", "control character"),
    "bidi-in-value": ('name: "a\\u202eb"\n', 1, "name", "control character"),
    "raw-control": ("name: a\x01b\n", 1, "(syntax)", "special characters"),
}


def _write(tmp_path: Path, text: str, name: str = "variant.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_with_file_line_and_field(tmp_path: Path, name: str) -> None:
    text, line, field, part = REFUSED[name]
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_variant_file(path)
    error = info.value
    assert (error.file, error.line, error.field) == (str(path), line, field), str(error)
    assert part in error.message, str(error)
    assert "\n" not in str(error) and "\x1b" not in str(error)


def test_a_forged_message_is_escaped(tmp_path: Path) -> None:
    """An unknown key holding ESC and a newline must not print a fake line on the terminal."""
    path = _write(tmp_path, 'base: v5.16\n"\\e[31mx\\nkvmmu: fake.yaml:1: y": 1\n')
    with pytest.raises(InputError) as info:
        load_variant_file(path)
    text = str(info.value)
    assert text.startswith(f"{path}:2: ")
    assert not any(ord(c) < 32 for c in text), text
    assert "\\x1b[31mx\\nkvmmu: fake.yaml" in text


def test_every_control_character_is_escaped_in_messages() -> None:
    error = InputError("a\x1bb.yaml", 3, "k\x9b", "got '\u202e' and\nmore")
    assert str(error) == "a\\x1bb.yaml:3: k\\x9b: got '\\u202e' and\\nmore"


ACCEPTED: dict[str, tuple[str, object]] = {
    "plain": ("a: word\n", "word"),
    "quoted yes": ("a: 'yes'\n", "yes"),
    "quoted date": ('a: "2021-13-45"\n', "2021-13-45"),
    "version": ("a: 1.2.3\n", "1.2.3"),
    "int": ("a: -12\n", -12),
    "decimal": ("a: 2.5\n", 2.5),
    "true": ("a: true\n", True),
    "null": ("a: null\n", None),
    "tilde": ("a: ~\n", None),
    "empty": ("a:\n", None),
    "block text": ("a: |\n  two\n  \tlines\n", "two\n\tlines\n"),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_the_documented_subset_is_accepted(tmp_path: Path, name: str) -> None:
    text, value = ACCEPTED[name]
    data = load_yaml(_write(tmp_path, text, "doc.yaml")).data
    assert data == {"a": value}
    assert type(data["a"]) is type(value)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "case.yaml"
    os.mkfifo(fifo)
    with pytest.raises(
        InputError, match=r"case\.yaml:1: \(document\): not a regular file \(a FIFO"
    ):
        load_yaml(fifo)


def test_a_device_is_refused_without_reading_it() -> None:
    with pytest.raises(InputError, match=r"not a regular file \(a character device"):
        load_yaml("/dev/zero")


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder, not a YAML file"):
        load_yaml(tmp_path)


def test_an_empty_path_is_refused() -> None:
    with pytest.raises(InputError, match="an empty path names no file"):
        load_yaml("")


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: " + "x" * MAX_BYTES + "\n", "big.yaml")
    with pytest.raises(InputError, match=f"larger than the limit of {MAX_BYTES} bytes"):
        load_yaml(path)


def test_syntax_errors_are_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: 1\n---\nb: 2\n", "two.yaml")
    with pytest.raises(InputError) as info:
        load_yaml(path)
    assert re.fullmatch(rf"{re.escape(str(path))}:\d+: \(syntax\): [^\n]+", str(info.value))


# --- through the command line: exit 2 with the file named, never exit 3 -------------------------

ROOT = Path(__file__).resolve().parent.parent
GOOD_CASE = ROOT / "conformance" / "cases" / "seed" / "paolo_special.yaml"


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from kvmmu.cli import main

    status = main(argv)
    return status, capsys.readouterr().err


@pytest.mark.parametrize("command", [["prove", "--variant"], ["explore", "--variant"]])
def test_a_bad_variant_file_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = _write(tmp_path, "base: v5.16\ndescription: 2021-13-45\n")
    status, err = _cli([*command, str(path)], capsys)
    assert status == 2
    assert err.startswith(f"kvmmu: {path}:2: description: ")


@pytest.mark.parametrize(
    "command", [["conform"], ["explore", "--sweep"], ["prove"], ["prove", "--variant"]]
)
def test_a_fifo_given_to_any_command_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    fifo = tmp_path / "input.yaml"
    os.mkfifo(fifo)
    from kvmmu.cli import main

    status = main([*command, str(fifo)])
    output = capsys.readouterr()
    assert status == 2  # conform reports it in its summary, the others on stderr
    assert f"{fifo}:1: (document): not a regular file (a FIFO)" in output.err + output.out


def test_run_refuses_a_fifo_and_a_device(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "case.yaml"
    os.mkfifo(fifo)
    assert _cli(["run", str(fifo)], capsys) == (
        2,
        f"kvmmu: {fifo}:1: (document): not a regular file (a FIFO)\n",
    )
    status, err = _cli(["run", "/dev/zero"], capsys)
    assert status == 2 and "a character device" in err


def test_conform_reports_every_bad_case_and_runs_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kvmmu.cli import main

    good = GOOD_CASE.read_text()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "good.yaml").write_text(good)
    (tmp_path / "a" / "date.yaml").write_text(good.replace("variant: paolo", "variant: 2021-13-45"))
    (tmp_path / "a" / "loop.yaml").write_text("loop: &a [*a]\n")
    (tmp_path / "a" / "bomb.yaml").write_text(BOMB)
    os.mkfifo(tmp_path / "a" / "fifo.yaml")
    (tmp_path / "b" / "good.yaml").write_text(good)  # the same id in another topic
    status = main(["conform", str(tmp_path), "--engine", "impl", "--json"])
    out = capsys.readouterr().out

    results = {
        Path(r["path"]).relative_to(tmp_path).as_posix(): r for r in json.loads(out)["results"]
    }
    assert status == 2
    assert results["a/good.yaml"]["passed"]
    for bad in ("a/date.yaml", "a/loop.yaml", "a/bomb.yaml", "a/fifo.yaml", "b/good.yaml"):
        assert results[bad]["engine"] == "(load)", bad
        assert results[bad]["error"].startswith(str(tmp_path / bad) + ":"), results[bad]
    assert "duplicate case id 'good'" in results["b/good.yaml"]["error"]


@pytest.mark.parametrize(
    "command", [["conform", ""], ["prove", ""], ["conform", "conformance", ""]]
)
def test_an_empty_path_is_an_error_not_the_working_directory(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    status, err = _cli(command, capsys)
    assert status == 2 and "empty path" in err, err
