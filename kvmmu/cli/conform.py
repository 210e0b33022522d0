"""``kvmmu conform``: run conformance cases on the engines and summarize."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from kvmmu.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_UNKNOWN,
    EXIT_VIOLATION,
    UsageError,
    engines,
    print_json,
)

if TYPE_CHECKING:
    pass


def cmd_conform(args: argparse.Namespace) -> int:
    """Run many cases on both engines and summarize."""
    from kvmmu.conformance.runner import discover, run_cases, summary

    try:
        paths = discover(args.paths or ["conformance/cases"])
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    if not paths:
        raise UsageError(f"no case files (*.yaml) in {', '.join(args.paths)}")
    results = run_cases(paths, engines(args.engine))
    failed = [r for r in results if not r.passed]
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
            }
        )
    else:
        print(summary(results))
    if any(r.engine == "(load)" for r in failed):
        return EXIT_BAD_INPUT
    if any(r.error is not None for r in failed):
        return EXIT_UNKNOWN  # an engine failed: no verdict on those cases
    return EXIT_VIOLATION if failed else EXIT_OK


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``conform`` subcommand."""
    conform = sub.add_parser(
        "conform",
        help="run conformance cases on both engines and summarize",
        description="Run every case under PATHS (files or folders; default conformance/cases) "
        "on the engines and report each disagreement with the expectation.",
    )
    conform.add_argument("paths", nargs="*", metavar="PATH")
    conform.add_argument(
        "--engine",
        choices=["impl", "spec", "both"],
        default="both",
        help="which engines run the cases (default both)",
    )
    conform.add_argument("--json", action="store_true", help="print one JSON object")
