"""``kvmmu knobs``: the knobs, presets and invariants."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from kvmmu.cli.common import (
    EXIT_OK,
    print_json,
)
from kvmmu.vocab import (
    INVARIANTS,
    KNOBS,
    PRESETS,
    make_variant,
)

if TYPE_CHECKING:
    pass


def cmd_knobs(args: argparse.Namespace) -> int:
    """List knobs, their values and the presets."""
    if args.json:
        print_json(
            {
                "knobs": {k: list(v) for k, v in KNOBS.items()},
                "presets": {p: make_variant(p).as_dict() for p in PRESETS},
                "invariants": list(INVARIANTS),
            }
        )
        return EXIT_OK
    from kvmmu.render import table

    rows = [
        [k, " | ".join(str(x).lower() if isinstance(x, bool) else str(x) for x in v)]
        for k, v in KNOBS.items()
    ]
    print(table(["knob", "values (default first)"], rows))
    print()
    print(
        table(
            ["preset", "knobs that differ from the defaults"],
            [
                [p, ", ".join(f"{k}={v}" for k, v in PRESETS[p].items()) or "(the defaults)"]
                for p in PRESETS
            ],
        )
    )
    return EXIT_OK


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``knobs`` subcommand."""
    knobs = sub.add_parser("knobs", help="list knobs, presets and invariants")
    knobs.add_argument("--json", action="store_true", help="print one JSON object")
