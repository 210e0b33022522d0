"""``python -m bench.reloads [--out docs/reloads.md] [--depth 16]``: K12 as a count of root
reloads (unloads that drop a still-valid root) under ``request: reload`` and
``request: free_obsolete``, on the same configurations (:mod:`kvmmu.reloads` says what is
counted and how). Writes a Markdown report and its raw figures as JSON beside it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from kvmmu.outputs import OutputPathError, check_output_path, write_atomically
from kvmmu.reloads import BASE, REQUESTS, Count, count
from kvmmu.vocab import Config

CONFIGS: tuple[Config, ...] = (
    Config(vcpus=("sp", "sp"), zappers=1, max_zaps=2),
    Config(vcpus=("special", "sp"), zappers=1, max_zaps=2),
    Config(vcpus=("sp", "tdp"), zappers=2, max_zaps=1),
)
DEFAULT_DEPTH = 16
REPORT = Path("docs/reloads.md")


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "n/a"


def report(counts: Sequence[Count], depth: int) -> str:
    """The Markdown report: one row per configuration and request."""
    lines = [
        "# K12: root reloads, `request: reload` vs `request: free_obsolete`",
        "",
        "Written by `python -m bench.reloads` (what is counted: `kvmmu/reloads.py`). Variant "
        f"{BASE} with only the `request` knob changed, on the executable model (`impl`): its "
        f"whole reachable state graph, and every schedule of up to {depth} steps from the "
        "initial state (all interleavings, counted, not enumerated). A *wasted reload* is a "
        "`vcpu.unload` that drops a root which is still valid: the vCPU must load a new root and "
        "refault what it had (kernel-facts.md 8.3, K12).",
        "",
        "| configuration | request | states | unload edges | wasted edges | schedules | unloads "
        "| wasted reloads | wasted / unloads | schedules wasting |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in counts:
        lines.append(
            f"| {c.config} | {c.request} | {c.states} | {c.unload_edges} | {c.wasted_edges} "
            f"| {c.schedules:.3e} | {c.unloads:.3e} | {c.wasted:.3e} "
            f"| {_share(c.wasted, c.unloads)} | {_share(c.schedules_wasting, c.schedules)} |"
        )
    lines += [
        "",
        "Where `free_obsolete` still wastes reloads, the root dropped is a special root: "
        "`is_obsolete_root()` cannot tell it valid (it has no shadow page) and frees it, a false "
        "positive the kernel accepts.",
    ]
    return "\n".join(lines) + "\n"


def measure(depth: int = DEFAULT_DEPTH, configs: Sequence[Config] = CONFIGS) -> list[Count]:
    return [count(config, request, depth) for config in configs for request in REQUESTS]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reloads",
        description="Count the root reloads (unloads that drop a still-valid root) under "
        "request: reload and request: free_obsolete (K12), and write a Markdown report with "
        "its JSON beside it.",
    )
    parser.add_argument("--out", default=str(REPORT), help=f"the report (default {REPORT})")
    parser.add_argument(
        "--depth",
        type=int,
        default=DEFAULT_DEPTH,
        help=f"the longest schedule counted (default {DEFAULT_DEPTH})",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.depth <= 1000:
        parser.error("--depth takes a whole number from 1 to 1000")
    try:
        out = check_output_path("--out", args.out)
        check_output_path("--out (its JSON)", str(out.with_suffix(".json")))
    except OutputPathError as err:
        parser.error(str(err))
    counts = measure(args.depth)
    text = report(counts, args.depth)
    raw = {"depth": args.depth, "base": BASE, "counts": [asdict(c) for c in counts]}
    write_atomically({out: text, out.with_suffix(".json"): json.dumps(raw, indent=2) + "\n"})
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
