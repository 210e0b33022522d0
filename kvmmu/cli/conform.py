"""``kvmmu conform``: run conformance cases on the engines and summarize."""

from __future__ import annotations

import argparse

from kvmmu.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_UNKNOWN,
    EXIT_VIOLATION,
    UsageError,
    engines,
    print_json,
)


def cmd_conform(args: argparse.Namespace) -> int:
    """Run many cases on both engines and summarize."""
    from kvmmu.conformance.runner import discover, run_cases, summary

    try:
        paths = discover(args.paths or ["conformance/cases"])
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    if not paths:
        raise UsageError(f"no case files (*.yaml) in {', '.join(args.paths)}")
    from kvmmu.progress import Heartbeat

    with Heartbeat("conform", total=len(paths), unit="case") as beat:
        results = run_cases(paths, engines(args.engine), lambda _, n: beat.at(n))
    failed = [r for r in results if not r.passed]
    if any(r.engine == "(load)" for r in failed):
        status = EXIT_BAD_INPUT
    elif any(r.error is not None for r in failed):
        status = EXIT_UNKNOWN  # an engine failed: no verdict on those cases
    else:
        status = EXIT_VIOLATION if failed else EXIT_OK
    if args.json:
        print_json(
            {
                "cases": len(paths),
                "results": [
                    {
                        "case": r.case_id,
                        "path": str(r.path),
                        "engine": r.engine,
                        "passed": r.passed,
                        "mismatches": list(r.mismatches),
                        **({"error": r.error} if r.error is not None else {}),
                    }
                    for r in results
                ],
                "passed": len(results) - len(failed),
                "failed": len(failed),
                "exit": status,
            }
        )
    else:
        print(summary(results))
    return status


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``conform`` subcommand."""
    conform = sub.add_parser(
        "conform",
        help="run conformance cases on both engines and summarize",
        description="Run every case under PATHS (files or folders; default conformance/cases) "
        "on the engines and report each disagreement with the expectation (a heartbeat on "
        "stderr when it is a terminal).",
    )
    conform.add_argument("paths", nargs="*", metavar="PATH")
    conform.add_argument(
        "--engine",
        choices=["impl", "spec", "both"],
        default="both",
        help="which engines run the cases (default both)",
    )
    conform.add_argument("--json", action="store_true", help="print one JSON object")
