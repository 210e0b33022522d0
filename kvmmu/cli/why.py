"""``kvmmu why``: the necessity analysis (``spec.why``)."""

from __future__ import annotations

import argparse

from kvmmu.cli.common import (
    UsageError,
    add_problem_arguments,
    print_json,
    problem_from_args,
    seconds_option,
    steps_option,
)
from kvmmu.vocab import (
    INVARIANTS,
)


def cmd_why(args: argparse.Namespace) -> int:
    """Which named facts (guards, lock facts, orderings) the proof of one invariant needs: the
    minimal unsat core over the facts' assumption literals, each fact confirmed by dropping it
    alone, with the shortest counterexample without it."""
    from kvmmu.necessity import exit_status, report_json, report_text
    from spec.why import analyse

    problem = problem_from_args(args)
    if args.invariant not in INVARIANTS:
        raise UsageError(f"unknown invariant {args.invariant!r} (known: {', '.join(INVARIANTS)})")
    result = analyse(problem.variant, problem.config, args.invariant, args.depth, args.timeout)
    if args.json:
        print_json(report_json(result))
    else:
        print(report_text(result))
    return exit_status(result)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    why = sub.add_parser(
        "why",
        help="necessity analysis: which guards, lock facts and orderings a proof needs",
        description="For an invariant that holds (BMC to --depth), find the named facts of the "
        "transition relation (the stale-check parts, the lock facts, the zapper's orderings, "
        "...) that the proof depends on: a minimal unsat core over one assumption literal per "
        "fact, then each fact dropped alone and re-checked, with the shortest counterexample "
        "when the invariant breaks without it. Exit status 0 when the analysis is complete, 1 "
        "when the invariant is violated by the model itself (nothing to explain), 4 vacuous, "
        "3 unknown.",
    )
    add_problem_arguments(why)
    why.add_argument(
        "--invariant", required=True, metavar="NAME", help=f"one of {', '.join(INVARIANTS)}"
    )
    why.add_argument(
        "--depth", type=steps_option, default=20, help="BMC bound in steps (default 20)"
    )
    why.add_argument(
        "--timeout",
        type=seconds_option,
        default=300.0,
        help="seconds before 'unknown' (default 300)",
    )
    why.add_argument("--json", action="store_true", help="print one JSON object")
