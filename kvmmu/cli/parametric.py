"""``kvmmu parametric``: the parametric proof, with its own options (``spec.parametric``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from kvmmu.cli.common import (
    EXIT_BAD_INPUT,
    config_text,
    lemmas_text,
    parse_knobs,
    print_json,
    show_trace,
    summary_line,
)
from kvmmu.vocab import (
    INVARIANTS,
    PRESETS,
    Config,
    Problem,
    Variant,
    bound_error,
    config_error,
    make_variant,
    override,
    timeout_error,
)

if TYPE_CHECKING:  # the module imports Z3: only when the command runs
    from kvmmu.engine import Progress
    from kvmmu.progress import Heartbeat
    from spec.parametric import CrossCheck, KindResult, ParametricResult

_EXIT: Mapping[str, int] = {
    "proved": 0,
    "violated": 1,
    "unknown": 3,
    "error": 3,
    "vacuous": 4,
    "not_inductive": 5,
}


def cmd_parametric(args: argparse.Namespace) -> int:
    """The parametric proof (any number of vCPUs): its own options, see ``--help``."""
    return main(args.rest)


def _parser(prog: str) -> argparse.ArgumentParser:
    from spec.parametric import DEFAULT_KINDS

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Prove invariants for any number of vCPUs (distinguished-vCPU abstraction, "
        "docs/parametric.md). A violation of the abstraction is drawn as the same table as "
        "'kvmmu prove' draws a trace (the lanes of d, the zappers, the notifier and env, the "
        "other vCPUs' holds of mmu_lock), with its concrete confirmation. A heartbeat goes to "
        "stderr when it is a terminal. Exit status as for prove: 0 proved, 1 violated (or a "
        "cross-check disagrees), 2 bad input, 3 unknown, 4 vacuous, 5 not inductive.",
    )
    parser.add_argument("--preset", default="v5.16", help=f"one of {', '.join(PRESETS)}")
    parser.add_argument("--knob", action="append", default=[], metavar="KNOB=VALUE")
    parser.add_argument(
        "--invariant", action="append", default=[], help="repeatable (default: the four main)"
    )
    parser.add_argument("--kinds", default=",".join(DEFAULT_KINDS), help="root kinds, e.g. sp,tdp")
    parser.add_argument("--zappers", type=int, default=1)
    parser.add_argument("--no-notifier", action="store_true")
    parser.add_argument("--max-k", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--cross-check",
        type=int,
        default=0,
        metavar="N",
        help="also run the concrete k-induction for 1..N vCPUs and compare",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="name every lemma a proof rests on, not a count"
    )
    parser.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "kvmmu parametric") -> int:
    """``kvmmu parametric``: the parametric verdicts, optionally cross-checked against the
    concrete k-induction for 1 to ``--cross-check`` vCPUs."""
    from kvmmu.progress import Heartbeat
    from spec.parametric import MAIN_INVARIANTS, cross_check, prove_parametric

    parser = _parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_BAD_INPUT if exc.code else 0
    try:
        variant = make_variant(args.preset)
        variant = override(variant, parse_knobs(args.knob))
        invariants = list(args.invariant) or list(MAIN_INVARIANTS)
        for name in invariants:
            if name not in INVARIANTS:
                raise ValueError(f"unknown invariant {name!r} (known: {', '.join(INVARIANTS)})")
        kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
        config = Config(kinds, args.zappers, not args.no_notifier, None, None)
        reason = config_error(config)
        if reason:
            raise ValueError(reason)
        for option, problem in (
            ("--max-k", bound_error(args.max_k)),
            ("--timeout", timeout_error(args.timeout)),
            ("--cross-check", bound_error(args.cross_check, minimum=0)),
        ):
            if problem is not None:
                raise ValueError(f"{option}: {problem}")
    except Exception as exc:  # ValueError, or the CLI's UsageError for a bad --knob
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    results: list[ParametricResult] = []
    with Heartbeat("parametric", total=len(invariants) * len(kinds), unit="proof") as beat:
        for name in invariants:
            beat.advance(0, name)
            heard = _heard(beat, len(results) * len(kinds))
            results.append(
                prove_parametric(
                    variant,
                    name,
                    kinds,
                    args.zappers,
                    not args.no_notifier,
                    args.max_k,
                    args.timeout,
                    progress=heard,
                )
            )
    checks: list[CrossCheck] = []
    if args.cross_check:
        verdicts = {r.invariant: r.verdict for r in results}
        checks = cross_check(variant, invariants, verdicts, args.cross_check, kinds)
    status = max((_EXIT[r.verdict] for r in results), default=0)
    if "violated" in (r.verdict for r in results):
        status = 1
    if checks and not all(c.agrees for c in checks):
        status = 1
    if args.json:
        out: dict[str, object] = {
            "variant": {"name": variant.name, "knobs": variant.as_dict()},
            "results": [r.as_dict() for r in results],
            "exit": status,
        }
        if checks:
            out["cross_check"] = [c.as_dict() for c in checks]
        print_json(out)
        return status
    for n, r in enumerate(results):
        if n:
            print()
        _show(variant, r, args.zappers, not args.no_notifier, args.verbose)
    for c in checks:
        shown = ", ".join(f"N={n}: {v} ({c.seconds[n]:.1f}s)" for n, v in c.concrete.items())
        mark = "agrees" if c.agrees else "DISAGREES"
        print(f"cross-check {c.invariant}: parametric {c.parametric}; {shown}: {mark}")
    if len(results) > 1:
        print(f"\n{summary_line([r.verdict for r in results], status)}")
    return status


def _heard(beat: Heartbeat, done: int) -> Progress:
    """The heartbeat's hook for one invariant's proofs, after ``done`` proofs of others."""

    def heard(_: str, n: int) -> None:
        beat.at(done + n)

    return heard


def _show(
    variant: Variant, r: ParametricResult, zappers: int, notifier: bool, verbose: bool
) -> None:
    """One result: the verdict, each kind of ``d``, and a counterexample as ``prove``'s table."""
    scope = f"any number of vCPUs of root kinds {','.join(r.kinds)}"
    size = f"counterexample of length {len(r.trace)}" if r.trace else f"k {r.k}"
    print(f"{r.invariant}: {r.verdict} ({scope}; {r.variant}; {size}; {r.seconds:.2f} s)")
    if r.reason:
        print(f"  reason: {r.reason}")
    for kind in r.per_kind:
        size = f"length {len(kind.trace)}" if kind.verdict == "violated" else f"k = {kind.k}"
        lemmas = lemmas_text(kind.lemmas, verbose)
        more = f"; {lemmas}" if lemmas else ""
        print(f"  d of kind {kind.kind}: {kind.verdict} ({size}{more}; {kind.seconds:.2f} s)")
    bad = next((kind for kind in r.per_kind if kind.trace), None)
    if bad is not None:
        _show_abstract(bad, r.invariant, r.kinds, zappers, notifier)
    conf = r.confirmation
    if conf is not None and conf.confirmed:
        concrete = Config(conf.vcpus, zappers, notifier, None, None)
        print(
            f"\nconfirmed in the concrete spec: {config_text(concrete)}; "
            f"counterexample of length {conf.length}"
        )
        from spec import SpecEngine

        show_trace(SpecEngine(), Problem(variant, concrete), conf.trace, (r.invariant,))
    reached = ", ".join(t for t, ok in r.cover.items() if ok) or "none"
    print(f"  covers reached: {reached}")


def _show_abstract(
    kind: KindResult, invariant: str, kinds: tuple[str, ...], zappers: int, notifier: bool
) -> None:
    """The abstraction's counterexample, as the table of ``kvmmu prove``: ``vcpu0`` is ``d``,
    ``env`` the other vCPUs' holds of ``mmu_lock``."""
    from kvmmu.render import lanes
    from spec.parametric import ENV

    config = Config((kind.kind,), zappers, notifier, None, None)
    print(
        f"\nabstraction: d = vcpu0 of kind {kind.kind}; env = every other vCPU (kinds "
        f"{','.join(kinds)}), seen through mmu_lock; zappers {zappers}"
        f"{', notifier' if notifier else ''}; counterexample of length {len(kind.trace)}"
    )
    marks = {len(kind.trace): f"VIOLATES {invariant}"}
    actors = [*config.actors(), ENV]
    print(lanes(config, kind.trace, kind.states, marks, (invariant,), actors))


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``parametric`` subcommand: its options are its own."""
    parametric = sub.add_parser(
        "parametric",
        help="prove invariants for any number of vCPUs (kvmmu parametric --help)",
        description="One distinguished vCPU of each root kind, the zappers and the notifier as "
        "in the spec, every other vCPU abstracted to its effect on mmu_lock: a proof for every "
        "number of vCPUs (docs/parametric.md). Options: kvmmu parametric --help.",
        add_help=False,
    )
    parametric.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
