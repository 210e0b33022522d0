"""What the subcommands share: exit statuses, the problem options, JSON and trace printing."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from kvmmu.engine import Engine, Replay
from kvmmu.prover import Verdict
from kvmmu.vocab import (
    DEFAULT_PRESET,
    INVARIANTS,
    KNOBS,
    MAX_BOUND,
    PRESETS,
    Config,
    KnobValue,
    Problem,
    Step,
    config_error,
    make_variant,
    override,
    timeout_error,
)

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_BAD_INPUT = 2
EXIT_UNKNOWN = 3
EXIT_VACUOUS = 4


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, with the control characters of a bad argument escaped in its message (a
    command line must not print a forged line on the terminal either)."""

    def error(self, message: str) -> NoReturn:
        from kvmmu.yamlio import printable

        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {printable(message)}\n")


def parse_knob(text: str) -> tuple[str, KnobValue]:
    if "=" not in text:
        raise UsageError(f"--knob takes KNOB=VALUE, got {text!r}")
    knob, raw = (part.strip() for part in text.split("=", 1))
    if not raw:
        values = "|".join(str(v).lower() for v in KNOBS.get(knob, ()))
        raise UsageError(f"--knob {text}: no value after '='" + (f" ({values})" if values else ""))
    value: KnobValue = {"true": True, "false": False}.get(raw.lower(), raw)
    return knob, value


def parse_knobs(texts: Sequence[str]) -> dict[str, KnobValue]:
    """Every ``--knob KNOB=VALUE``; a knob given twice is an error (which one would win?)."""
    knobs: dict[str, KnobValue] = {}
    for text in texts:
        knob, value = parse_knob(text)
        if knob in knobs:
            raise UsageError(f"--knob {knob} is given twice")
        knobs[knob] = value
    return knobs


# --- numeric options, checked by argparse as they are parsed (exit status 2, usage line) --------


def seconds_option(text: str) -> float:
    """``--timeout``: a finite number of seconds, > 0, at most ``vocab.MAX_TIMEOUT_S``."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    reason = timeout_error(seconds)
    if reason is not None:
        raise argparse.ArgumentTypeError(f"{reason} (got {text!r})")
    return seconds


def whole_option(minimum: int, maximum: int) -> Callable[[str], int]:
    """An option taking a whole number from ``minimum`` to ``maximum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {minimum} to {maximum}, got {text!r}"
            )
        return value

    return parse


steps_option = whole_option(1, MAX_BOUND)  # --depth, --max-k, --max-depth
zappers_option = whole_option(0, 2)


def add_problem_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose a variant and a configuration, shared by several commands."""
    group = parser.add_argument_group("variant and configuration")
    group.add_argument(
        "--preset",
        default=None,
        help=f"a preset: {', '.join(PRESETS)} (default {DEFAULT_PRESET})",
    )
    group.add_argument("--variant", metavar="FILE.yaml", help="a variant file: base and knobs")
    group.add_argument(
        "--knob",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="override one knob (repeatable), e.g. stale_check.reload_request=none",
    )
    group.add_argument(
        "--vcpus",
        default="special,sp",
        help="root kinds of vcpu0, vcpu1, ...: sp, special, tdp (default special,sp)",
    )
    group.add_argument("--zappers", type=zappers_option, default=1, help="0, 1 or 2 (default 1)")
    group.add_argument("--notifier", action="store_true", help="run the mmu notifier actor")
    group.add_argument(
        "--max-zaps",
        default="2",
        help="zaps per zapper, or 'none' for unbounded (default 2)",
    )
    group.add_argument(
        "--max-invalidations",
        default="1",
        help="notifier invalidations, or 'none' for unbounded (default 1)",
    )


def parse_bound(text: str, option: str) -> int | None:
    if text.lower() in ("none", "null", "unbounded"):
        return None
    try:
        bound = int(text)
    except ValueError:
        bound = -1
    if not 0 <= bound <= MAX_BOUND:
        raise UsageError(
            f"{option} takes a whole number from 0 to {MAX_BOUND} or 'none', got {text!r}"
        )
    return bound


def problem_from_args(args: argparse.Namespace) -> Problem:
    """Build the Problem that the options describe; UsageError or InputError when they are bad."""
    overrides = parse_knobs(args.knob)
    try:
        if args.variant is not None:
            if args.preset is not None:
                raise UsageError("give --preset or --variant, not both")
            from kvmmu.yamlio import load_variant_file

            variant = override(load_variant_file(args.variant), overrides)
        else:
            variant = make_variant(
                DEFAULT_PRESET if args.preset is None else args.preset, overrides
            )
    except ValueError as err:
        raise UsageError(str(err)) from None
    config = Config(
        vcpus=tuple(k.strip() for k in args.vcpus.split(",") if k.strip()),
        zappers=args.zappers,
        notifier=args.notifier,
        max_zaps=parse_bound(args.max_zaps, "--max-zaps"),
        max_invalidations=parse_bound(args.max_invalidations, "--max-invalidations"),
    )
    reason = config_error(config)
    if reason:
        raise UsageError(reason)
    return Problem(variant, config)


def chosen_invariants(args: argparse.Namespace) -> tuple[str, ...]:
    chosen = tuple(args.invariant) or INVARIANTS
    for name in chosen:
        if name not in INVARIANTS:
            raise UsageError(f"unknown invariant {name!r} (known: {', '.join(INVARIANTS)})")
    return chosen


def print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


def add_invariant_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--invariant",
        action="append",
        default=[],
        metavar="NAME",
        help=f"check only this invariant (repeatable): {', '.join(INVARIANTS)}",
    )


def problem_json(problem: Problem) -> dict[str, object]:
    return {
        "variant": {"name": problem.variant.name, "knobs": problem.variant.as_dict()},
        "config": problem.config.as_dict(),
    }


def trace_json(trace: Sequence[Step]) -> list[dict[str, str]]:
    return [{"actor": s.actor, "step": s.name} for s in trace]


def show_trace(
    engine: Engine, problem: Problem, trace: Sequence[Step], invariants: Sequence[str] = ()
) -> Replay:
    """Print a counterexample as per-actor lanes, replayed on ``engine`` for the state columns,
    with the state that ``invariants`` read (``kvmmu.render.READS``)."""
    from kvmmu.render import lanes, replay_states, violation_marks

    replay, states = replay_states(engine, problem, trace, invariants)
    print(lanes(problem.config, trace, states, violation_marks(replay), invariants))
    return replay


def emitted_cases(
    base: Path, engine: Engine, problem: Problem, traces: Mapping[str, Sequence[Step]], how: str
) -> dict[Path, str]:
    """Each counterexample as the text of a conformance case (``--emit-case``): path -> text."""
    from kvmmu.emit import case_document, case_text

    files: dict[Path, str] = {}
    for invariant, trace in traces.items():
        path = base if len(traces) == 1 else base.with_name(f"{base.stem}-{invariant}.yaml")
        replay = engine.replay(problem.variant, problem.config, trace)
        description = f"Counterexample to {invariant} under {problem.variant.name}, found by {how}."
        files[path] = case_text(case_document(problem, trace, replay, description))
    return files


def itf_traces(
    base: Path, engine: Engine, problem: Problem, traces: Mapping[str, Sequence[Step]], how: str
) -> dict[Path, str]:
    """Each counterexample as an ITF trace (``kvmmu.itf``, ``--itf``), replayed on ``engine``:
    path -> text."""
    from kvmmu.itf import itf_path, itf_text, trace_document
    from kvmmu.render import replay_states

    files: dict[Path, str] = {}
    for invariant, trace in traces.items():
        path = itf_path(base, invariant, len(traces) > 1)
        replay, states = replay_states(engine, problem, trace)
        description = f"Counterexample to {invariant} under {problem.variant.name}, found by {how}."
        document = trace_document(
            problem,
            trace,
            states,
            replay,
            invariant=invariant,
            source=f"kvmmu ({engine.name} engine)",
            description=description,
        )
        files[path] = itf_text(document)
    return files


def output_paths(args: argparse.Namespace, *options: str) -> dict[str, Path]:
    """The output paths given to ``options`` (``--json-out``...), checked before any work
    starts (:func:`kvmmu.outputs.check_output_paths`): option -> path, for those given."""
    from kvmmu.outputs import OutputPathError, check_output_paths

    given = [(option, getattr(args, option[2:].replace("-", "_"))) for option in options]
    try:
        return check_output_paths(given)
    except OutputPathError as err:
        raise UsageError(str(err)) from None


def write_outputs(files: Mapping[Path, str]) -> None:
    """Write the outputs of a run that got to its end, all together (:mod:`kvmmu.outputs`),
    and say so on stderr (stdout may be --json)."""
    from kvmmu.outputs import write_atomically

    write_atomically(files)
    for path in files:
        print(f"wrote {path}", file=sys.stderr)


def config_text(config: Config) -> str:
    def bound(value: int | None) -> str:
        return "unbounded" if value is None else str(value)

    parts = [f"vcpus {','.join(config.vcpus)}", f"zappers {config.zappers}"]
    parts.append(f"max_zaps {bound(config.max_zaps)}")
    if config.notifier:
        parts += ["notifier", f"max_invalidations {bound(config.max_invalidations)}"]
    return ", ".join(parts)


def lemmas_text(lemmas: Sequence[str], verbose: bool = False) -> str:
    """``14 lemmas`` (``--verbose``: ``lemmas a, b, ...``), or nothing without lemmas."""
    if not lemmas:
        return ""
    if verbose:
        return f"lemmas {', '.join(lemmas)}"
    return f"{len(lemmas)} lemma{'s' if len(lemmas) != 1 else ''} (--verbose names them)"


def verdict_text(v: Verdict, verbose: bool = False) -> str:
    """``violated in 13 steps (0.25 s)``, ``proved for all depths (k = 4; 9 lemmas) (1.2 s)``,
    ``unknown after depth 7 of 20 (300.00 s)``, ...; ``verbose`` names the lemmas."""
    lemmas = lemmas_text(v.lemmas, verbose)
    more = {
        "violated": f" in {len(v.trace)} steps",
        "holds": f" to depth {v.bound}",
        "proved": f" for all depths (k = {v.k}" + (f"; {lemmas})" if lemmas else ")"),
        "not_inductive": f" at k = {v.bound} (not a violation: the counterexample to induction "
        "may be unreachable)",
        "unknown": f" (no violation up to depth {v.reached}; bound {v.bound})"
        if v.reached is not None
        else "",
    }.get(v.verdict, "")
    reason = f": {v.reason}" if v.reason else ""
    return f"{v.verdict}{more} ({v.seconds:.2f} s){reason}"


def summary_line(verdicts: Sequence[str], status: int) -> str:
    """``1 violated, 4 proved -> exit 1``: the count of each verdict, worst first."""
    order = ("violated", "unknown", "error", "vacuous", "not_inductive", "holds", "proved")
    counts = {name: verdicts.count(name) for name in order if name in verdicts}
    counts.update({name: verdicts.count(name) for name in verdicts if name not in counts})
    return f"{', '.join(f'{n} {name}' for name, n in counts.items())} -> exit {status}"


def cover_text(cover: Mapping[str, bool | None], required: frozenset[str]) -> str:
    """``fault.map yes, retry.notifier n/a, ...``: n/a for targets the problem rules out."""

    def show(target: str, reached: bool | None) -> str:
        if target not in required:
            return f"{target} n/a"
        return f"{target} {'yes' if reached else 'NO' if reached is False else 'unknown'}"

    return ", ".join(show(t, ok) for t, ok in cover.items())


def engines(choice: str) -> list[Engine]:
    from kvmmu.conformance.runner import load_engine

    names = ["impl", "spec"] if choice == "both" else [choice]
    return [load_engine(name) for name in names]
