"""Fuzz the input gate: mutate the repository's own valid YAML files and run each mutant through
the command line, in this process (``kvmmu.cli.main``).

Every mutant must end in exit status 0 or 1, or in a clean exit 2 whose one-line message names
the mutant's file (``kvmmu: FILE:LINE: FIELD: message``): never a traceback, an "internal error"
(exit 3), a hang, or output holding a raw control character.

The mutants are drawn from a seeded generator (:func:`mutants`), so a seed and a count give the
same files on every machine. The operators change scalars (YAML 1.1 words, dates, tags, huge
numbers, nan), keys (unknown, renamed, duplicated, deleted), types and nesting, add anchors,
aliases and alias bombs, and flip, insert and truncate bytes.

The engines are replaced by a stub while fuzzing (every invariant "proved" or "holds" at once):
the gate, the loaders and the command line are under test, not Z3.

``python -m bench.fuzz --seconds 600`` runs for ten minutes; the test suite runs a fixed number
of mutants (``tests/test_fuzz.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
SEED = 10
HANG_SECONDS = 20  # one mutant taking longer than this is reported as a hang

# What a bad file may say, as raw YAML text put where a value was.
NASTY: tuple[str, ...] = (
    "2021-13-45",
    "2021-12-10 25:61:00",
    "!!timestamp 2021-02-30",
    "!!timestamp foo",
    "!!int abc",
    "!!int 0x",
    "!!int 0b2",
    "!!int ''",
    "!!float x",
    "!!float ''",
    "!!bool maybe",
    "!!python/object/apply:os.system [ls]",
    "!custom x",
    "9" * 5000,
    "-" + "9" * 51,
    ".nan",
    ".inf",
    "-.inf",
    "1e308",
    "1.0e+400",
    "yes",
    "no",
    "on",
    "off",
    "True",
    "NULL",
    "1:20",
    "190:20:30",
    "0x1F",
    "0o17",
    "010",
    "1_000",
    "~",
    "null",
    "''",
    '""',
    "[]",
    "{}",
    "[[[[[[",
    "]",
    "&a x",
    "*a",
    "*undefined",
    '"\\e[31mred\\nkvmmu: fake.yaml:1: x: y"',
    '"\\u202e\\x00\\x85"',
    "-1",
    "0",
    "1",
    "2",
    "3",
    "99999999999999999999",
    "3.5",
    "true",
    "false",
    '"true"',
    "<<: {a: 1}",
    "|\n  text",
    "- a\n- b",
    "{a: 1, a: 2}",
    "? complex",
    "@reserved",
    "`tick",
    "%YAML 1.1",
    "\t",
    "\x00",
    "\x1b[31m",
    "\x85",
    "\u2028",
    "\ufeff",
    "v5.16",
    "paolo",
    "special",
    "vcpu0 fault.map",
    "zapper zap.yield",
    "no_null_deref",
    "kind",
    "bmc",
    "small",
)

WORDS: tuple[str, ...] = (
    "format",
    "description",
    "variant",
    "config",
    "schedule",
    "expect",
    "violated",
    "knobs",
    "base",
    "vcpus",
    "obligations",
    "defaults",
    "presets",
    "vary",
    "configs",
    "bound",
    "timeout",
    "class",
    "id",
    "zap.yield",
    "speed",
    "<<",
    "'quoted key'",
    "[a, b]",
    "{a: 1}",
)


@dataclass(frozen=True)
class Seed:
    """A valid input file: its kind (``case``, ``obligations``, ``variant``, ``sweep``), where
    it comes from, and its text."""

    kind: str
    source: str
    text: str


@dataclass(frozen=True)
class Mutant:
    index: int
    seed: Seed
    data: bytes
    operators: tuple[str, ...]


@dataclass(frozen=True)
class Finding:
    """A mutant that broke the promise, and how."""

    mutant: Mutant
    path: Path
    status: int | None
    reason: str
    stderr: str


def _yaml_blocks(markdown: Path, first_line: str) -> list[str]:
    """The ``yaml`` code blocks of ``markdown`` whose first line starts with ``first_line``."""
    blocks = re.findall(r"```yaml\n(.*?)```", markdown.read_text(), re.DOTALL)
    return [b for b in blocks if b.startswith(first_line)]


def seeds(root: Path = ROOT) -> list[Seed]:
    """The repository's own valid input files of every kind."""
    found = [
        Seed("case", str(p.relative_to(root)), p.read_text())
        for p in sorted((root / "conformance" / "cases").rglob("*.yaml"))
    ]
    found += [
        Seed("obligations", str(p.relative_to(root)), p.read_text())
        for p in sorted((root / "proofs").glob("*.yaml"))
    ]
    for text in _yaml_blocks(root / "conformance" / "FORMAT.md", "format: kvmmu-variant/1"):
        found.append(Seed("variant", "conformance/FORMAT.md", text.replace(": ...", ": x")))
    found.append(Seed("variant", "(built in)", "base: paolo\nknobs: {zap.yield: true}\n"))
    for text in _yaml_blocks(root / "docs" / "formats" / "sweep.md", "format: kvmmu-sweep/1"):
        found.append(Seed("sweep", "docs/formats/sweep.md", text))
    return found


# --- mutation operators: text -> text ------------------------------------------------------------

_VALUE = re.compile(r"^(\s*(?:- )?[^\s:#][^:#]*:\s)(.+)$|^(\s*- )(.+)$")


def _value_lines(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if _VALUE.match(line)]


def _replace_value(rng: random.Random, lines: list[str], new: str) -> list[str]:
    candidates = _value_lines(lines)
    if not candidates:
        return lines
    i = rng.choice(candidates)
    match = _VALUE.match(lines[i])
    assert match is not None
    head = match.group(1) or match.group(3)
    return [*lines[:i], head + new, *lines[i + 1 :]]


def _scalar(rng: random.Random, lines: list[str]) -> list[str]:
    return _replace_value(rng, lines, rng.choice(NASTY))


def _type(rng: random.Random, lines: list[str]) -> list[str]:
    return _replace_value(rng, lines, rng.choice(("[x]", "{a: 1}", "null", "[]", "{}", "42", "x")))


def _key(rng: random.Random, lines: list[str]) -> list[str]:
    if not lines:
        return lines
    i = rng.randrange(len(lines))
    how = rng.randrange(4)
    if how == 0:  # delete a line (often a required key)
        return lines[:i] + lines[i + 1 :]
    if how == 1:  # the same line twice (a duplicate key)
        return lines[: i + 1] + lines[i:]
    if how == 2:  # a new key here
        indent = re.match(r"\s*", lines[i]).group(0)  # type: ignore[union-attr]
        return [*lines[:i], f"{indent}{rng.choice(WORDS)}: {rng.choice(NASTY)}", *lines[i:]]
    # rename the key of this line
    return [
        re.sub(r"^(\s*(?:- )?)[^\s:#][^:#]*:", rf"\g<1>{rng.choice(WORDS)}:", lines[i], count=1)
    ]


def _nesting(rng: random.Random, lines: list[str]) -> list[str]:
    depth = rng.choice((2, 31, 33, 100, 1000, 5000))
    if rng.randrange(2):
        return _replace_value(rng, lines, "[" * depth + "x" + "]" * depth)
    if rng.randrange(2):
        return _replace_value(rng, lines, "{a: " * depth + "1" + "}" * depth)
    if not lines:
        return lines
    i = rng.randrange(len(lines))  # indentation shifted: structure changes or breaks
    return [*lines[:i], " " * rng.choice((1, 2, 4)) + lines[i], *lines[i + 1 :]]


def _alias(rng: random.Random, lines: list[str]) -> list[str]:
    how = rng.randrange(3)
    if how == 0:
        bomb = ['l0: &l0 "lol"'] + [
            f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)
        ]
        return lines + bomb
    if how == 1:
        return _replace_value(rng, lines, rng.choice(("&a [*a]", "&m {k: *m}", "*nowhere")))
    lines = _replace_value(rng, lines, "&anchor x")
    return _replace_value(rng, lines, "*anchor")


def _bytes(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    how = rng.randrange(4)
    i = rng.randrange(len(data))
    if how == 0:
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
    if how == 1:
        return data[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 4))) + data[i:]
    if how == 2:
        return data[:i]
    return (
        data[:i] + rng.choice((b"\xff\xfe", b"\xc3", b"\x00", b"\x1b[2J", b"\t", b"\r")) + data[i:]
    )


LINE_OPERATORS: dict[str, Callable[[random.Random, list[str]], list[str]]] = {
    "scalar": _scalar,
    "type": _type,
    "key": _key,
    "nesting": _nesting,
    "alias": _alias,
}


def mutate(rng: random.Random, seed: Seed) -> tuple[bytes, tuple[str, ...]]:
    """One mutant of ``seed``: one to three operators, then sometimes a byte-level one."""
    lines = seed.text.splitlines()
    used: list[str] = []
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(sorted(LINE_OPERATORS))
        lines = LINE_OPERATORS[name](rng, lines)
        used.append(name)
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    if rng.random() < 0.25:
        data = _bytes(rng, data)
        used.append("bytes")
    return data, tuple(used)


def mutants(seed: int) -> Iterator[Mutant]:
    """An endless, reproducible stream of mutants of :func:`seeds`."""
    rng = random.Random(seed)
    pool = seeds()
    index = 0
    while True:
        origin = rng.choice(pool)
        data, used = mutate(rng, origin)
        yield Mutant(index, origin, data, used)
        index += 1


# --- running a mutant ------------------------------------------------------------------------


def command(kind: str, path: Path) -> list[str]:
    """The command line that reads a file of ``kind``."""
    return {
        "case": ["run", str(path), "--engine", "impl"],
        # one file alone never passes the manifest rule (every invariant violated somewhere):
        # without it, mutants that the loader accepts run too, on the stubbed engines
        "obligations": ["prove", "--no-manifest-rule", str(path)],
        "variant": ["prove", "--variant", str(path), "--vcpus", "special"],
        "sweep": ["explore", "--sweep", str(path), "--jobs", "1"],
    }[kind]


class _Hang(BaseException):  # not an Exception: main() must not turn it into an exit status
    pass


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _Hang


@contextlib.contextmanager
def stubbed_engines() -> Iterator[None]:
    """Replace the Z3 calls of prove, proof obligations (liveness ones too) and explore by an
    instant answer."""
    import kvmmu.explore
    import kvmmu.obligations
    import kvmmu.prover
    from kvmmu.prover import Verdict

    def check(
        variant: object,
        config: object,
        invariants: Sequence[str],
        engine: str,
        bound: int,
        timeout_s: float,
        progress: object = None,
    ) -> list[Verdict]:
        verdict = "proved" if engine == "kind" else "holds"
        return [Verdict(inv, verdict, engine, bound, 0.0) for inv in invariants]

    def liveness(ob: kvmmu.obligations.Obligation) -> Verdict:
        return Verdict(ob.invariant, "proved", "liveness", ob.bound, 0.0)

    modules = (kvmmu.prover, kvmmu.obligations, kvmmu.explore)
    saved = [module.check for module in modules]
    saved_liveness = kvmmu.obligations._liveness
    for module in modules:
        setattr(module, "check", check)  # noqa: B010 - mypy rejects assigning a function
    setattr(kvmmu.obligations, "_liveness", liveness)  # noqa: B010
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            setattr(module, "check", original)  # noqa: B010
        setattr(kvmmu.obligations, "_liveness", saved_liveness)  # noqa: B010


def run_mutant(mutant: Mutant, folder: Path) -> tuple[int | None, Finding | None]:
    """Write ``mutant`` under ``folder``, run its command: its exit status (None: it never
    returned) and how it broke the promise (None when it kept it). Call inside
    :func:`stubbed_engines`."""
    from kvmmu.cli import main

    path = folder / f"{mutant.seed.kind}-{mutant.index}.yaml"
    path.write_bytes(mutant.data)
    out, err = io.StringIO(), io.StringIO()
    status: int | None = None
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(command(mutant.seed.kind, path))
    except _Hang:
        reason = f"no answer within {HANG_SECONDS} s"
        return None, Finding(mutant, path, None, reason, err.getvalue())
    except BaseException as exc:  # a traceback is exactly what is being hunted
        reason = f"raised {type(exc).__name__}: {exc}"
        return None, Finding(mutant, path, None, reason, err.getvalue())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    found = broken_promise(path, status, out.getvalue(), err.getvalue())
    if found is None:
        path.unlink()
        return status, None
    return status, Finding(mutant, path, status, found, err.getvalue())


def broken_promise(path: Path, status: int, stdout: str, stderr: str) -> str | None:
    """Why this run broke the promise, or None."""
    if "Traceback" in stderr or "internal error" in stderr:
        return "a traceback or an internal error"
    if any(ord(c) < 32 and c not in "\n\t" for c in stdout + stderr):
        return "a raw control character in the output"
    if status in (0, 1):
        return None
    if status != 2:
        return f"exit status {status}"
    lines = stderr.splitlines()
    if len(lines) != 1:
        return "exit 2 with not exactly one line on stderr"
    if not re.fullmatch(rf"kvmmu: {re.escape(str(path))}:[0-9]+: \S.*: .+", lines[0]):
        return "exit 2 without FILE:LINE: FIELD: naming the file"
    return None


@dataclass(frozen=True)
class Report:
    runs: int
    seconds: float
    statuses: dict[int | None, int]
    findings: tuple[Finding, ...]


def fuzz(
    folder: Path, seed: int = SEED, count: int | None = None, seconds: float | None = None
) -> Report:
    """Run mutants until ``count`` have run or ``seconds`` have passed (whichever is given
    first); keep the files of the findings under ``folder``."""
    started = time.monotonic()
    statuses: dict[int | None, int] = {}
    findings: list[Finding] = []
    runs = 0
    with stubbed_engines():
        for mutant in mutants(seed):
            if count is not None and runs >= count:
                break
            if seconds is not None and time.monotonic() - started >= seconds:
                break
            status, finding = run_mutant(mutant, folder)
            runs += 1
            statuses[status] = statuses.get(status, 0) + 1
            if finding is not None:
                findings.append(finding)
    return Report(runs, time.monotonic() - started, statuses, tuple(findings))


def describe(finding: Finding) -> str:
    m = finding.mutant
    head = f"{finding.path} (mutant {m.index} of {m.seed.source}, {'+'.join(m.operators)})"
    return f"{head}: {finding.reason}\n  {finding.stderr.strip()[:500]!r}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz",
        description="Fuzz kvmmu's input gate with mutants of the repository's own YAML files.",
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="how long (default 60, unless --count)"
    )
    parser.add_argument("--count", type=int, default=None, help="stop after this many mutants")
    parser.add_argument("--seed", type=int, default=SEED, help=f"the generator's seed ({SEED})")
    parser.add_argument(
        "--keep", type=Path, default=Path("fuzz-findings"), help="where to keep failing mutants"
    )
    args = parser.parse_args(argv)
    args.keep.mkdir(parents=True, exist_ok=True)
    seconds = 60.0 if args.seconds is None and args.count is None else args.seconds
    report = fuzz(args.keep, args.seed, args.count, seconds)
    for finding in report.findings:
        print(describe(finding))
    rate = report.runs / report.seconds if report.seconds else 0.0
    print(
        f"{report.runs} mutants (seed {args.seed}) in {report.seconds:.1f} s ({rate:.0f}/s): "
        f"{len(report.findings)} broke the promise"
    )
    shown = ", ".join(f"{n} x {s}" for s, n in sorted(report.statuses.items(), key=str))
    print(f"exit statuses: {shown}")
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
