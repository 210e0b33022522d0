"""``kvmmu knobs``: the knobs, presets and invariants."""

from __future__ import annotations

import argparse

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

# what each invariant forbids, in the words of docs/protocol.md section 3
INVARIANT_TEXT: dict[str, str] = {
    "no_spte_in_obsolete_root": "no fault.map installs into an obsolete root",
    "no_guest_on_obsolete_root": "no vCPU in guest mode on an obsolete root outside a zap window",
    "no_use_after_free": "no SPTE installed into, and no guest on, a freed root",
    "no_stale_pfn": "no SPTE maps a pfn invalidated after the fault's fault.snapshot",
    "no_null_deref": "is_page_fault_stale() never dereferences a root without a shadow page",
}


def cmd_knobs(args: argparse.Namespace) -> int:
    """List knobs, their values and the presets."""
    if args.json:
        print_json(
            {
                "knobs": {k: list(v) for k, v in KNOBS.items()},
                "presets": {p: make_variant(p).as_dict() for p in PRESETS},
                "invariants": list(INVARIANTS),
                "exit": EXIT_OK,
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
    print()
    rows = [[name, INVARIANT_TEXT.get(name, "")] for name in INVARIANTS]
    print(table(["invariant", "what it forbids (docs/protocol.md section 3)"], rows))
    return EXIT_OK


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``knobs`` subcommand."""
    knobs = sub.add_parser("knobs", help="list knobs, presets and invariants")
    knobs.add_argument("--json", action="store_true", help="print one JSON object")
