"""``kvmmu run``: replay one conformance case and check its expectation."""

from __future__ import annotations

import argparse
from pathlib import Path

from kvmmu.cli.common import (
    EXIT_OK,
    EXIT_VIOLATION,
    UsageError,
    config_text,
    engines,
    print_json,
    problem_json,
    trace_json,
)
from kvmmu.vocab import (
    Problem,
)


def cmd_run(args: argparse.Namespace) -> int:
    """Replay one case on one or both engines, print its trace, and check its expectation."""
    from kvmmu.conformance.case import load_case
    from kvmmu.conformance.check import compare, probes_for
    from kvmmu.render import table

    if args.case and _is_itf(Path(args.case)):
        raise UsageError(
            f"{args.case} is an ITF trace (JSON, written by --itf), not a conformance case: "
            "kvmmu run replays a case (YAML); write one with --emit-case beside --itf"
        )
    case = load_case(args.case)  # an empty path is the loader's error
    reports = []
    for engine in engines(args.engine):
        replay = engine.replay(case.variant, case.config, case.schedule, probes_for(case))
        mismatches = compare(case, replay, engine.name)
        reports.append((engine.name, replay, mismatches))
    status = EXIT_VIOLATION if any(m for _, _, m in reports) else EXIT_OK
    if args.json:
        print_json(
            {
                "case": case.id,
                "path": str(case.path),
                **problem_json(Problem(case.variant, case.config)),
                "engines": [
                    {
                        "engine": name,
                        "passed": not mismatches,
                        "mismatches": mismatches,
                        "blocked": replay.blocked,
                        "first_violation": dict(replay.first_violation),
                        "steps": [
                            {
                                "index": r.index,
                                **trace_json([r.step])[0],
                                "changes": r.changes,
                                "violations": sorted(r.violations),
                                "covers": sorted(r.covers),
                            }
                            for r in replay.steps
                        ],
                    }
                    for name, replay, mismatches in reports
                ],
                "exit": status,
            }
        )
    else:
        print(f"{case.id}: {case.description}")
        print(f"variant {case.variant.name}; {config_text(case.config)}")
        for name, replay, mismatches in reports:
            rows = [
                [
                    str(r.index),
                    r.step.actor,
                    r.step.name,
                    r.changes,
                    _invariant_status(r.violations),
                ]
                for r in replay.steps
            ]
            if replay.blocked is not None:
                blocked = case.schedule[replay.blocked - 1]
                rows.append([str(replay.blocked), blocked.actor, blocked.name, "(not enabled)", ""])
            print(f"\n[{name}]")
            print(table(["#", "actor", "step", "what changed", "invariants"], rows))
            verdict = "PASS: the expectation holds" if not mismatches else "FAIL:"
            print("\n".join([verdict, *(f"  {m}" for m in mismatches)]))
    return status


def _is_itf(path: Path) -> bool:
    """An ITF trace: named ``*.itf.json``, or a JSON object with ``#meta`` and ``states``."""
    if path.name.endswith(".itf.json"):
        return True
    if not path.is_file():
        return False  # a FIFO or a device is never opened here: load_case refuses it
    try:
        with path.open("rb") as file:
            head = file.read(4096).decode("utf-8", errors="replace").lstrip()
    except OSError:
        return False  # load_case reports it
    return head.startswith("{") and '"#meta"' in head and '"states"' in head


def _invariant_status(violations: frozenset[str]) -> str:
    return "VIOLATED " + ", ".join(sorted(violations)) if violations else "ok"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``run`` subcommand."""
    run = sub.add_parser(
        "run",
        help="replay one conformance case and check its expectation",
        description="Replay a case's schedule on an engine, print the trace as a table "
        "(step, actor, what changed, invariant status) and check the expectation.",
    )
    run.add_argument("case", metavar="CASE.yaml")
    run.add_argument(
        "--engine",
        choices=["impl", "spec", "both"],
        default="impl",
        help="which engine replays the case (default impl)",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object")
