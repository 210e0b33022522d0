"""``kvmmu parametric``: the parametric proof, with its own options (``spec.parametric``)."""

from __future__ import annotations

import argparse


def cmd_parametric(args: argparse.Namespace) -> int:
    """The parametric proof (any number of vCPUs): its own options, see ``--help``."""
    from spec.parametric import main as parametric_main

    return parametric_main(args.rest)


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
