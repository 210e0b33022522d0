"""``kvmmu diff``: the differential check of BMC (spec) against exhaustive search (impl)."""

from __future__ import annotations

import argparse

from kvmmu.cli.common import (
    EXIT_OK,
    EXIT_UNKNOWN,
    EXIT_VIOLATION,
    UsageError,
    print_json,
    steps_option,
    whole_option,
)
from kvmmu.cli.liveness import cmd_diff_liveness
from kvmmu.vocab import (
    PRESETS,
)


def cmd_diff(args: argparse.Namespace) -> int:
    """Differential check of BMC against the exhaustive search, preset by preset."""
    from kvmmu.differential import sweep
    from kvmmu.render import table

    presets = list(PRESETS) if args.preset_list is None else args.preset_list.split(",")
    for preset in presets:
        if preset not in PRESETS:
            raise UsageError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    if args.liveness:
        return cmd_diff_liveness(args, presets)
    if args.no_fairness:
        raise UsageError("--no-fairness goes with --liveness")
    from kvmmu.differential import configurations
    from kvmmu.progress import Heartbeat

    if args.knobs == "all":
        from kvmmu.differential import knob_sweep

        # every knob value, one knob at a time from each preset (several minutes)
        comparisons = knob_sweep(args.max_vcpus, args.depth, presets, notifier=not args.no_notifier)
    else:
        problems = len(presets) * len(list(configurations(args.max_vcpus, not args.no_notifier)))
        with Heartbeat("diff", total=problems, unit="problem") as beat:
            comparisons = sweep(
                args.max_vcpus,
                args.depth,
                presets,
                notifier=not args.no_notifier,
                progress=lambda _, n: beat.at(n),
            )
    disagree = [c for c in comparisons if not c.agrees]
    if any(c.spec_verdict not in ("holds", "violated") for c in comparisons):
        status = EXIT_UNKNOWN  # the spec gave no answer somewhere: no comparison there
    else:
        status = EXIT_VIOLATION if disagree else EXIT_OK
    if args.json:
        print_json(
            {
                "depth": args.depth,
                "comparisons": [
                    {
                        "variant": c.problem.variant.name,
                        "config": c.problem.config.as_dict(),
                        "invariant": c.invariant,
                        "spec": c.spec_length,
                        "impl": c.impl_length,
                        "agrees": c.agrees,
                        "mismatches": list(c.mismatches),
                    }
                    for c in comparisons
                ],
                "disagreements": len(disagree),
                "exit": status,
            }
        )
    else:
        rows = [
            [
                c.problem.variant.name,
                ",".join(c.problem.config.vcpus),
                c.invariant,
                c.spec_verdict if c.spec_length is None else f"violated in {c.spec_length}",
                "holds" if c.impl_length is None else f"violated in {c.impl_length}",
                "yes" if c.agrees else "NO: " + "; ".join(c.mismatches),
            ]
            for c in comparisons
        ]
        print(table(["variant", "vcpus", "invariant", "spec (BMC)", "impl (BFS)", "agree"], rows))
        print(f"{len(comparisons)} comparisons to depth {args.depth}, {len(disagree)} disagree")
    return status


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``diff`` subcommand."""
    diff = sub.add_parser(
        "diff",
        help="differential check: BMC (spec) against exhaustive search (impl)",
        description="For every preset and configurations of 1 to --max-vcpus vCPUs, compare "
        "the BMC verdict and shortest counterexample length with the implementation's "
        "exhaustive search to the same depth, and replay each engine's counterexample on the "
        "other (a heartbeat on stderr when it is a terminal).",
    )
    diff.add_argument("--max-vcpus", type=whole_option(1, 3), default=2, help="1 to 3 (default 2)")
    diff.add_argument("--depth", type=steps_option, default=16, help="bound in steps (default 16)")
    diff.add_argument(
        "--presets", dest="preset_list", metavar="P1,P2", help="presets to compare (default all)"
    )
    diff.add_argument(
        "--knobs",
        choices=("presets", "all"),
        default="presets",
        help="presets: the presets on mixed configurations (default); all: each preset and each "
        "value of every knob changed one at a time from it, on configurations where every knob "
        "is observable (1 vCPU of each kind; with --max-vcpus 2 or more also special,sp and two "
        "sp vCPUs with two zappers): several minutes. With --liveness: the same variants on the "
        "liveness configurations (the livelock knobs of K4 and K6 included): long",
    )
    diff.add_argument("--no-notifier", action="store_true", help="leave the notifier out")
    diff.add_argument("--json", action="store_true", help="print one JSON object")
    diff.add_argument(
        "--liveness",
        action="store_true",
        help="compare the liveness verdicts instead (docs/protocol.md 6.11): the spec's "
        "k-liveness proof or shortest lasso against the implementation's fair-cycle search, "
        "each lasso checked on the other engine (--max-vcpus 1 or 2)",
    )
    diff.add_argument(
        "--no-fairness", action="store_true", help="with --liveness: without the fairness"
    )
