"""``kvmmu history``: the kernel's bug history K1-K12 as a regression suite (kvmmu.history)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kvmmu.cli.common import UsageError, output_paths, print_json, write_outputs

DEFAULT_FILE = "docs/kernel-history.yaml"


def cmd_history(args: argparse.Namespace) -> int:
    """Run the stated rows of a history file and print (and write) the K table."""
    from kvmmu.history import (
        HEADER,
        cells,
        exit_status,
        load_history,
        markdown,
        result_json,
        run_row,
        select,
        work,
    )
    from kvmmu.progress import Heartbeat
    from kvmmu.render import table

    outputs = output_paths(args, "--markdown")  # checked before any work
    if not args.file:
        raise UsageError("an empty path names no history file")
    history = load_history(args.file)
    try:
        rows = select(history, args.only)
    except ValueError as err:
        raise UsageError(str(err)) from None
    results = []
    with Heartbeat("history", total=sum(work(r) for r in rows), unit="run") as beat:
        for row in rows:
            beat.describe(f"history {row.id}")
            results.append(run_row(row, lambda what: beat.advance(1, what)))
    status = exit_status(results)
    if args.json:
        print_json(
            {
                "file": str(history.file),
                "rows": [result_json(r) for r in results],
                "passed": sum(1 for r in results if r.passed),
                "failed": sum(1 for r in results if r.passed is False),
                "not_stated": sum(1 for r in results if r.passed is None),
                "exit": status,
            }
        )
    else:
        print(table(HEADER, [cells(r) for r in results]))
        for r in results:
            for mismatch in r.mismatches:
                print(f"{r.row.id}: NOT as expected: {mismatch}")
        checked = [r for r in results if r.passed is not None]
        print(
            f"{len(results)} rows: {sum(1 for r in checked if r.passed)} of {len(checked)} "
            f"checked as expected, {len(results) - len(checked)} not stated -> exit {status}"
        )
    files: dict[Path, str] = {}
    if "--markdown" in outputs:
        files[outputs["--markdown"]] = markdown(history, results)
    write_outputs(files)
    return status


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``history`` subcommand."""
    history = sub.add_parser(
        "history",
        help="the kernel's bug history (K1-K12) as a regression suite",
        description="Read a history file (format kvmmu-history/1, docs/formats/history.md; "
        f"default {DEFAULT_FILE}, from the working directory; its proofs paths are relative to "
        "the file) and, for every stated row, run the proof obligations it "
        "names (proofs/*.yaml): the buggy form must be violated (a counterexample, or a lasso "
        "for a liveness property) and the fix proved, each as its obligation expects. A "
        "benchmark row (K12) counts wasted root reloads on the executable model. Prints the "
        "table K, kernel commit, bug, invariant, buggy-form verdict, fix verdict, status; "
        "every verdict is computed, none is read from the file. A heartbeat goes to stderr "
        "when it is a terminal. Exit status 0 when every checked row is as expected, 1 when "
        "one is not, 2 for bad input (a history file naming an unknown obligation, or one "
        "whose expectation does not fit its form).",
    )
    history.add_argument(
        "file", nargs="?", default=DEFAULT_FILE, metavar="FILE", help="the history file"
    )
    history.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="K",
        help="run only this row (repeatable), e.g. --only K4",
    )
    history.add_argument(
        "--markdown",
        metavar="FILE",
        help="also write the table and the rows' stories as Markdown (docs/kernel-history.md)",
    )
    history.add_argument("--json", action="store_true", help="print one JSON object")
