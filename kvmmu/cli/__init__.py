"""The ``kvmmu`` command line: one module per subcommand, the shared helpers in ``common``.

Exit statuses (a stable interface, documented in README.md):

==  =====================================================================================
0   everything as asked: every invariant holds (to the depth), every case passes
1   a violation was found, or a case's expectation failed
2   bad input: usage, a YAML file, a preset, a knob, a configuration
3   unknown: the solver gave up or timed out, or an engine failed (never a pass)
4   vacuous: an invariant holds but a cover target was not reachable within the bound
5   not inductive: k-induction found a counterexample to induction (not a violation)
6   holds only to a depth, where k-induction was asked to prove it for all depths
==  =====================================================================================
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType

from kvmmu.cli import (
    conform,
    diff,
    explore,
    history,
    knobs,
    parametric,
    prove,
    run,
    search,
    why,
)
from kvmmu.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_UNKNOWN,
    EXIT_VACUOUS,
    EXIT_VIOLATION,
    Parser,
    UsageError,
)

__all__ = [
    "COMMANDS",
    "EXIT_BAD_INPUT",
    "EXIT_OK",
    "EXIT_UNKNOWN",
    "EXIT_VACUOUS",
    "EXIT_VIOLATION",
    "UsageError",
    "build_parser",
    "main",
]

# the subcommands in the order that --help lists them
_MODULES: dict[str, ModuleType] = {
    "knobs": knobs,
    "prove": prove,
    "search": search,
    "run": run,
    "conform": conform,
    "diff": diff,
    "explore": explore,
    "why": why,
    "parametric": parametric,
    "history": history,
}

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "parametric": parametric.cmd_parametric,
    "knobs": knobs.cmd_knobs,
    "prove": prove.cmd_prove,
    "search": search.cmd_search,
    "run": run.cmd_run,
    "conform": conform.cmd_conform,
    "diff": diff.cmd_diff,
    "explore": explore.cmd_explore,
    "why": why.cmd_why,
    "history": history.cmd_history,
}


def _version() -> str:
    """The installed distribution's version (pyproject.toml's), or the package's own."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kvmmu")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree, not installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="kvmmu",
        description=(
            "Formal specification (Z3) and executable model of the KVM x86 MMU obsolete-root "
            "protocol."
        ),
        epilog=(
            "exit status: 0 as asked (proved or holds, cases pass, engines agree), 1 a "
            "violation, a failed case or obligation, 2 bad input, 3 unknown (solver gave up) or "
            "engine error, 4 vacuous (a cover target unreachable within the bound), 5 not "
            "inductive, 6 holds only to a depth where k-induction was asked"
        ),
    )
    parser.add_argument("--version", action="version", version=f"kvmmu {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _MODULES.values():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kvmmu`` script: never a traceback for bad input."""
    from kvmmu.yamlio import InputError, printable

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["parametric"]:
        # its options are its own: argparse's REMAINDER would not pass a leading --option on
        args = argparse.Namespace(command="parametric", rest=argv[1:])
    else:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, or a usage error that argparse has printed
            return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    handler = COMMANDS[args.command]
    try:
        return handler(args)
    except (UsageError, InputError) as err:
        print(f"kvmmu: {printable(str(err))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # the reader went away (``kvmmu ... | head``): exit as a process killed by SIGPIPE does
        sys.stderr.close()
        return 128 + 13
    except OSError as err:
        # an output or input path that cannot be written or read: bad input, not an engine fault
        message = f"{err.filename or ''}: {err.strerror or err}"
        print(f"kvmmu: {printable(message)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("kvmmu: interrupted", file=sys.stderr)
        return EXIT_UNKNOWN
    except Exception as err:  # an engine bug must still not dump a traceback on the user
        if os.environ.get("KVMMU_DEBUG"):
            traceback.print_exc()
        print(
            f"kvmmu: internal error: {type(err).__name__}: {printable(str(err))} "
            "(KVMMU_DEBUG=1 shows more)",
            file=sys.stderr,
        )
        return EXIT_UNKNOWN
