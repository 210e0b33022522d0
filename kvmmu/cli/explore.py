"""``kvmmu explore``: the what-if sweep."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from kvmmu.cli.common import (
    UsageError,
    add_invariant_argument,
    chosen_invariants,
    output_paths,
    parse_bound,
    parse_knobs,
    print_json,
    seconds_option,
    steps_option,
    whole_option,
    write_outputs,
    zappers_option,
)
from kvmmu.vocab import (
    DEFAULT_PRESET,
    LIVENESS_PROPERTIES,
    PRESETS,
    Config,
    KnobValue,
    config_error,
    make_variant,
)

if TYPE_CHECKING:
    from kvmmu.explore import Sweep


def _parse_vary(text: str) -> tuple[str, tuple[KnobValue, ...]]:
    """``KNOB`` (all its values) or ``KNOB=V1,V2``."""
    from kvmmu.explore import vary_values

    knob, equals, raw = (part.strip() for part in text.partition("="))
    if equals and not raw:
        raise UsageError(f"--vary {text}: no values after '=' (give KNOB alone for all its values)")
    values: list[KnobValue] | None = None
    if raw:
        values = [
            {"true": True, "false": False}.get(v.strip().lower(), v.strip()) for v in raw.split(",")
        ]
    try:
        return knob, vary_values(knob, values)
    except ValueError as err:
        raise UsageError(f"--vary {text}: {err}") from None


_EXPLORE_PROBLEM_OPTIONS = (
    ("preset", "--preset"),
    ("all_presets", "--all-presets"),
    ("variant", "--variant"),
    ("knob", "--knob"),
    ("vary", "--vary"),
    ("vcpus", "--vcpus"),
    ("zappers", "--zappers"),
    ("notifier", "--notifier"),
    ("max_zaps", "--max-zaps"),
    ("max_invalidations", "--max-invalidations"),
    ("invariant", "--invariant"),
    ("property", "--property"),
    ("engine", "--engine"),
    ("depth", "--depth"),
    ("max_k", "--max-k"),
    ("timeout", "--timeout"),
)


def _sweep_from_args(args: argparse.Namespace) -> Sweep:
    """The sweep the options describe (a :class:`kvmmu.explore.Sweep`)."""
    from kvmmu.explore import DEFAULT_ENGINE, DEFAULT_TIMEOUT, expand_variants, make_sweep
    from kvmmu.yamlio import load_variant_file

    if args.all_presets and args.preset:
        raise UsageError("give --all-presets or --preset, not both")
    try:
        bases = [make_variant(p) for p in PRESETS] if args.all_presets else []
        bases += [make_variant(name) for name in args.preset]
    except ValueError as err:
        raise UsageError(str(err)) from None
    bases += [load_variant_file(path) for path in args.variant]
    if not bases:
        bases = [make_variant(DEFAULT_PRESET)]
    knobs = parse_knobs(args.knob)
    vary = [_parse_vary(text) for text in args.vary]
    configs = []
    for vcpus in args.vcpus or ["special,sp"]:
        config = Config(
            vcpus=tuple(k.strip() for k in vcpus.split(",") if k.strip()),
            zappers=1 if args.zappers is None else args.zappers,
            notifier=args.notifier,
            max_zaps=parse_bound(_or(args.max_zaps, "2"), "--max-zaps"),
            max_invalidations=parse_bound(_or(args.max_invalidations, "1"), "--max-invalidations"),
        )
        reason = config_error(config)
        if reason:
            raise UsageError(reason)
        configs.append(config)
    engine = args.engine or DEFAULT_ENGINE
    if engine == "kind" and args.depth is not None:
        raise UsageError("--depth is the bound of --engine bmc; k-induction takes --max-k")
    if engine == "bmc" and args.max_k is not None:
        raise UsageError("--max-k is the bound of --engine kind; BMC takes --depth")
    bound = args.depth if engine == "bmc" else args.max_k
    try:
        variants = expand_variants(bases, knobs, vary)
        return make_sweep(
            variants,
            configs,
            _columns(args),
            engine,
            bound,
            DEFAULT_TIMEOUT if args.timeout is None else args.timeout,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None


def _columns(args: argparse.Namespace) -> tuple[str, ...]:
    """The matrix's columns: the invariants chosen (all by default, none when only liveness
    properties are asked for), then the liveness properties of ``--property``."""
    for name in args.property:
        if name not in LIVENESS_PROPERTIES:
            known = ", ".join(LIVENESS_PROPERTIES)
            raise UsageError(f"unknown liveness property {name!r} (known: {known})")
    invariants = chosen_invariants(args) if args.invariant or not args.property else ()
    return (*invariants, *dict.fromkeys(args.property))


def _or(value: str | None, default: str) -> str:
    """``value``, or ``default`` when the option was not given (an empty value was given)."""
    return default if value is None else value


def _given(value: object) -> bool:
    """Whether an option was given: ``--zappers 0`` and ``--variant ''`` were."""
    return value is not None and value is not False and value != []


def cmd_explore(args: argparse.Namespace) -> int:
    """Sweep variants, configurations and invariants; print the verdict matrix."""
    from kvmmu import explore

    outputs = output_paths(args, "--html")
    if args.sweep is not None:
        given = [opt for name, opt in _EXPLORE_PROBLEM_OPTIONS if _given(getattr(args, name))]
        if given:
            raise UsageError(f"--sweep fixes what to explore: drop {', '.join(given)}")
        sweep = explore.load_sweep(args.sweep)
    else:
        sweep = _sweep_from_args(args)
    if args.json and args.format != "text":
        raise UsageError("give --json or --format, not both")
    if args.dask == "":
        raise UsageError("--dask: an empty address")
    if args.jobs is not None and args.dask:
        raise UsageError("--jobs runs the cells here, --dask on a cluster: give one")
    progress = explore.ProgressBar() if args.progress or sys.stderr.isatty() else None
    try:
        result = explore.explore(
            sweep,
            jobs=args.jobs,
            dask_address=args.dask,
            replay="--html" in outputs,
            progress=progress,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.json:
        print_json(explore.exploration_json(result))
    elif args.format == "markdown":
        print(explore.matrix_markdown(result), end="")
    else:
        print(explore.matrix_text(result))
    if "--html" in outputs:
        from kvmmu.report import html_report

        write_outputs({outputs["--html"]: html_report(result)})
    return result.exit_status


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    explore = sub.add_parser(
        "explore",
        help="what-if sweep: a verdict matrix over variants, configurations and invariants",
        description="Check every invariant (the columns) for every variant under every "
        "configuration (the rows) with the Z3 spec, each cell one 'kvmmu prove' of one "
        "invariant; by default by k-induction (unbounded proofs, violations with shortest "
        "traces). The variants are the presets given (or all of them), each with the fixed "
        "--knob overrides, times the cartesian product of the values of the --vary knobs. "
        "Or give it all in a sweep file (format kvmmu-sweep/1, docs/formats/). A sweep "
        "reports, it does not judge: exit status 0 when every cell got an answer, 3 when some "
        "cell is unknown or an error, 2 for bad input.",
    )
    explore.add_argument("--sweep", metavar="FILE.yaml", help="a sweep file (format kvmmu-sweep/1)")
    group = explore.add_argument_group("variants, configurations, invariants")
    group.add_argument(
        "--preset",
        action="append",
        default=[],
        help=f"a preset row (repeatable): {', '.join(PRESETS)} (default {DEFAULT_PRESET})",
    )
    group.add_argument("--all-presets", action="store_true", help="every preset")
    group.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="FILE.yaml",
        help="a variant file row (repeatable)",
    )
    group.add_argument(
        "--knob",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="a fixed override on top of every variant (repeatable)",
    )
    group.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="KNOB[=V1,V2]",
        help="vary a knob over all its values, or the ones listed (repeatable: the cartesian "
        "product)",
    )
    group.add_argument(
        "--vcpus",
        action="append",
        default=[],
        help="root kinds of vcpu0, vcpu1, ... (repeatable: one configuration each; "
        "default special,sp)",
    )
    group.add_argument("--zappers", type=zappers_option, default=None, help="0, 1 or 2 (default 1)")
    group.add_argument("--notifier", action="store_true", help="run the mmu notifier actor")
    group.add_argument("--max-zaps", default=None, help="zaps per zapper or 'none' (default 2)")
    group.add_argument(
        "--max-invalidations", default=None, help="invalidations or 'none' (default 1)"
    )
    add_invariant_argument(explore)
    explore.add_argument(
        "--property",
        action="append",
        default=[],
        metavar="NAME",
        help=f"add a liveness column (repeatable): {', '.join(LIVENESS_PROPERTIES)} "
        "(docs/protocol.md 6.11; k-liveness under weak fairness, else the shortest lasso up to "
        "30 steps); alone, without --invariant, only the liveness columns",
    )
    group = explore.add_argument_group("engine")
    group.add_argument(
        "--engine",
        choices=["bmc", "kind"],
        default=None,
        help="kind: k-induction (default); bmc: bounded model checking",
    )
    group.add_argument("--depth", type=steps_option, default=None, help="BMC bound (default 20)")
    group.add_argument(
        "--max-k", type=steps_option, default=None, help="largest k for k-induction (default 30)"
    )
    group.add_argument(
        "--timeout",
        type=seconds_option,
        default=None,
        help="seconds per cell before 'unknown' (300)",
    )
    group = explore.add_argument_group("running and output")
    group.add_argument(
        "--jobs",
        type=whole_option(1, 1024),
        default=None,
        help="cells in parallel (default: every core)",
    )
    group.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the cells on the Dask cluster at ADDRESS (pip install 'kvmmu[dask]')",
    )
    group.add_argument(
        "--progress",
        action="store_true",
        help="a progress bar on stderr even when it is not a terminal",
    )
    group.add_argument(
        "--format",
        choices=["text", "markdown"],
        default="text",
        help="the matrix as a text table (default) or Markdown",
    )
    group.add_argument("--json", action="store_true", help="print one JSON object")
    group.add_argument(
        "--html",
        metavar="FILE",
        help="also write a self-contained HTML report (counterexamples as lane diagrams)",
    )
