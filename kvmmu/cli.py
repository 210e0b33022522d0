"""The ``kvmmu`` command line.

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
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kvmmu.engine import Engine, Replay
from kvmmu.prover import Verdict
from kvmmu.vocab import (
    DEFAULT_PRESET,
    INVARIANTS,
    KNOBS,
    PRESETS,
    Config,
    Knobs,
    KnobValue,
    Problem,
    Step,
    config_error,
    make_variant,
    override,
    required_covers,
)

if TYPE_CHECKING:
    from kvmmu.explore import Sweep

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_BAD_INPUT = 2
EXIT_UNKNOWN = 3
EXIT_VACUOUS = 4


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


# --- choosing the problem: preset, variant file, knobs, configuration ----------------------------


def _parse_knob(text: str) -> tuple[str, KnobValue]:
    if "=" not in text:
        raise UsageError(f"--knob takes KNOB=VALUE, got {text!r}")
    knob, raw = (part.strip() for part in text.split("=", 1))
    value: KnobValue = {"true": True, "false": False}.get(raw.lower(), raw)
    return knob, value


def add_problem_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose a variant and a configuration, shared by several commands."""
    group = parser.add_argument_group("variant and configuration")
    group.add_argument(
        "--preset",
        default=None,
        help=f"a preset: {', '.join(PRESETS)} (default {DEFAULT_PRESET})",
    )
    group.add_argument("--variant", metavar="FILE.yaml", help="a variant file: base and knobs")
    group.add_argument(
        "--knob",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="override one knob (repeatable), e.g. stale_check.reload_request=none",
    )
    group.add_argument(
        "--vcpus",
        default="special,sp",
        help="root kinds of vcpu0, vcpu1, ...: sp, special, tdp (default special,sp)",
    )
    group.add_argument("--zappers", type=int, default=1, help="0, 1 or 2 (default 1)")
    group.add_argument("--notifier", action="store_true", help="run the mmu notifier actor")
    group.add_argument(
        "--max-zaps",
        default="2",
        help="zaps per zapper, or 'none' for unbounded (default 2)",
    )
    group.add_argument(
        "--max-invalidations",
        default="1",
        help="notifier invalidations, or 'none' for unbounded (default 1)",
    )


def _bound(text: str, option: str) -> int | None:
    if text.lower() in ("none", "null", "unbounded"):
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{option} takes a whole number or 'none', got {text!r}") from None


def problem_from_args(args: argparse.Namespace) -> Problem:
    """Build the Problem that the options describe; UsageError or InputError when they are bad."""
    overrides = dict(_parse_knob(k) for k in args.knob)
    try:
        if args.variant:
            if args.preset:
                raise UsageError("give --preset or --variant, not both")
            from kvmmu.yamlio import load_variant_file

            variant = override(load_variant_file(Path(args.variant)), overrides)
        else:
            variant = make_variant(args.preset or DEFAULT_PRESET, overrides)
    except ValueError as err:
        raise UsageError(str(err)) from None
    config = Config(
        vcpus=tuple(k.strip() for k in args.vcpus.split(",") if k.strip()),
        zappers=args.zappers,
        notifier=args.notifier,
        max_zaps=_bound(args.max_zaps, "--max-zaps"),
        max_invalidations=_bound(args.max_invalidations, "--max-invalidations"),
    )
    reason = config_error(config)
    if reason:
        raise UsageError(reason)
    return Problem(variant, config)


def _invariants(args: argparse.Namespace) -> tuple[str, ...]:
    chosen = tuple(args.invariant) or INVARIANTS
    for name in chosen:
        if name not in INVARIANTS:
            raise UsageError(f"unknown invariant {name!r} (known: {', '.join(INVARIANTS)})")
    return chosen


def _print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


# --- the commands ------------------------------------------------------------------------------


def cmd_knobs(args: argparse.Namespace) -> int:
    """List knobs, their values and the presets."""
    if args.json:
        _print_json(
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


def _problem_json(problem: Problem) -> dict[str, object]:
    return {
        "variant": {"name": problem.variant.name, "knobs": problem.variant.as_dict()},
        "config": problem.config.as_dict(),
    }


def _trace_json(trace: Sequence[Step]) -> list[dict[str, str]]:
    return [{"actor": s.actor, "step": s.name} for s in trace]


def _show_trace(engine: Engine, problem: Problem, trace: Sequence[Step]) -> Replay:
    """Print a counterexample as per-actor lanes, replayed on ``engine`` for the state columns."""
    from kvmmu.render import lanes, replay_states, violation_marks

    replay, states = replay_states(engine, problem, trace)
    print(lanes(problem.config, trace, states, violation_marks(replay)))
    return replay


def _emit_cases(
    base: Path, engine: Engine, problem: Problem, traces: Mapping[str, Sequence[Step]], how: str
) -> None:
    from kvmmu.emit import case_document, write_case

    for invariant, trace in traces.items():
        path = base if len(traces) == 1 else base.with_name(f"{base.stem}-{invariant}.yaml")
        replay = engine.replay(problem.variant, problem.config, trace)
        description = f"Counterexample to {invariant} under {problem.variant.name}, found by {how}."
        write_case(path, case_document(problem, trace, replay, description))
        print(f"wrote {path}")


def _write_itf(
    base: Path, engine: Engine, problem: Problem, traces: Mapping[str, Sequence[Step]], how: str
) -> None:
    """Write each counterexample as an ITF trace (``kvmmu.itf``), replayed on ``engine``."""
    from kvmmu.itf import itf_path, trace_document, write
    from kvmmu.render import replay_states

    for invariant, trace in traces.items():
        path = itf_path(base, invariant, len(traces) > 1)
        replay, states = replay_states(engine, problem, trace)
        description = f"Counterexample to {invariant} under {problem.variant.name}, found by {how}."
        document = trace_document(
            problem,
            trace,
            states,
            replay,
            invariant=invariant,
            source=f"kvmmu ({engine.name} engine)",
            description=description,
        )
        write(path, document)
        print(f"wrote {path}", file=sys.stderr)  # stderr: stdout may be --json


def _config_text(config: Config) -> str:
    def bound(value: int | None) -> str:
        return "unbounded" if value is None else str(value)

    parts = [f"vcpus {','.join(config.vcpus)}", f"zappers {config.zappers}"]
    parts.append(f"max_zaps {bound(config.max_zaps)}")
    if config.notifier:
        parts += ["notifier", f"max_invalidations {bound(config.max_invalidations)}"]
    return ", ".join(parts)


def cmd_prove(args: argparse.Namespace) -> int:
    """Prove invariants with the Z3 spec: one problem from the options, or obligation files."""
    if args.paths and args.itf:
        raise UsageError("--itf writes the counterexamples of one problem: not with PATHs")
    if args.paths:
        return _prove_obligations(args)
    from kvmmu.obligations import verdict_json
    from kvmmu.prover import check, worst_status
    from spec import SpecEngine

    problem = problem_from_args(args)
    invariants = _invariants(args)
    bound = args.depth if args.engine == "bmc" else args.max_k
    if bound < 1:
        raise UsageError("--depth and --max-k must be at least 1")
    if args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    verdicts = check(problem.variant, problem.config, invariants, args.engine, bound, args.timeout)
    status = worst_status([v.exit_status for v in verdicts])
    if args.json:
        results = [verdict_json(v, problem.variant, problem.config, args.timeout) for v in verdicts]
        _print_json({**_problem_json(problem), "results": results, "exit": status})
    else:
        how = f"depth {bound}" if args.engine == "bmc" else f"k-induction up to k = {bound}"
        print(f"variant {problem.variant.name}; {_config_text(problem.config)}; {how}")
        for v in verdicts:
            print(f"\n{v.invariant}: {_verdict_text(v)}")
            if v.verdict == "violated":
                _show_trace(SpecEngine(), problem, v.trace)
            elif v.cover:
                print(f"  cover within the bound: {_cover_text(v.cover, v.required)}")
    traces = {v.invariant: v.trace for v in verdicts if v.verdict == "violated"}
    if args.emit_case and traces:
        how = f"kvmmu prove ({args.engine}, bound {bound})"
        _emit_cases(Path(args.emit_case), SpecEngine(), problem, traces, how)
    if args.itf and traces:
        how = f"kvmmu prove ({args.engine}, bound {bound})"
        _write_itf(Path(args.itf), SpecEngine(), problem, traces, how)
    return status


def _verdict_text(v: Verdict) -> str:
    """``violated in 13 steps (0.25 s)``, ``proved at k = 4 with lemmas a, b (1.2 s)``, ..."""
    more = {
        "violated": f" in {len(v.trace)} steps",
        "holds": f" to depth {v.bound}",
        "proved": f" for all depths (k = {v.k}"
        + (f"; lemmas {', '.join(v.lemmas)})" if v.lemmas else ")"),
        "not_inductive": f" at k = {v.bound} (not a violation: the counterexample to induction "
        "may be unreachable)",
    }.get(v.verdict, "")
    reason = f": {v.reason}" if v.reason else ""
    return f"{v.verdict}{more} ({v.seconds:.2f} s){reason}"


def _prove_obligations(args: argparse.Namespace) -> int:
    """Run proof obligation files: a table, and JSON or JUnit XML reports on request."""
    from kvmmu.obligations import junit_xml, load_manifest, outcome_json, run
    from kvmmu.render import table

    # obligation files fix everything about a run: an option given beside them would be ignored
    problem_options = ("preset", "variant", "knob", "invariant", "emit_case", "itf")
    fixed = [name for name in problem_options if getattr(args, name, None)]
    defaults = build_parser().parse_args(["prove"])
    changed = [
        name
        for name in (
            "engine",
            "depth",
            "max_k",
            "timeout",
            "vcpus",
            "zappers",
            "notifier",
            "max_zaps",
            "max_invalidations",
        )
        if getattr(args, name) != getattr(defaults, name)
    ]
    if fixed or changed:
        shown = ", ".join("--" + n.replace("_", "-") for n in fixed + changed)
        raise UsageError(
            f"obligation files fix the variant, configuration and engine: drop {shown}"
        )
    try:
        obligations = load_manifest(args.paths)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    chosen = [ob for ob in obligations if args.klass in ("all", ob.klass)]
    if not chosen:
        raise UsageError(f"no obligation of class {args.klass} in {', '.join(args.paths)}")
    outcomes = []
    for ob in chosen:
        outcome = run(ob)
        outcomes.append(outcome)
        if not args.json:
            verdict = outcome.verdict
            mark = "ok  " if outcome.mismatch is None else "FAIL"
            print(f"{mark} {ob.id}: {_verdict_text(verdict)}", flush=True)
    failed = [o for o in outcomes if o.mismatch is not None]
    report = {
        "obligations": [outcome_json(o) for o in outcomes],
        "passed": len(outcomes) - len(failed),
        "failed": len(failed),
    }
    if args.json:
        _print_json(report)
    else:
        rows = [
            [
                o.obligation.id,
                o.obligation.invariant,
                o.obligation.engine,
                o.obligation.expect,
                o.verdict.verdict,
                f"{o.verdict.seconds:.2f}",
                "ok" if o.mismatch is None else f"FAIL: {o.mismatch}",
            ]
            for o in outcomes
        ]
        print()
        print(table(["obligation", "invariant", "engine", "expect", "verdict", "s", ""], rows))
        print(f"{len(outcomes)} obligations: {report['passed']} as expected, {len(failed)} not")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.junit:
        Path(args.junit).write_text(junit_xml(outcomes) + "\n", encoding="utf-8")
    return EXIT_VIOLATION if failed else EXIT_OK


def _cover_text(cover: Mapping[str, bool | None], required: frozenset[str]) -> str:
    """``fault.map yes, retry.notifier n/a, ...``: n/a for targets the problem rules out."""

    def show(target: str, reached: bool | None) -> str:
        if target not in required:
            return f"{target} n/a"
        return f"{target} {'yes' if reached else 'NO' if reached is False else 'unknown'}"

    return ", ".join(show(t, ok) for t, ok in cover.items())


def cmd_search(args: argparse.Namespace) -> int:
    """Exhaustive breadth-first search of the implementation's interleavings."""
    from impl import ImplEngine, explore

    problem = problem_from_args(args)
    invariants = _invariants(args)
    if args.max_depth is not None and args.max_depth < 1:
        raise UsageError("--max-depth must be at least 1")
    try:
        result = explore(problem.variant, problem.config, invariants, args.max_depth)
    except ValueError as err:
        raise UsageError(str(err)) from None
    # as for a proof: 'holds' counts only if every required cover target was reached
    required = required_covers(Knobs.of(problem.variant), problem.config)
    unreached = sorted(required - result.covers)
    verdicts = {
        inv: "violated" if inv in result.violations else "vacuous" if unreached else "holds"
        for inv in invariants
    }
    status = EXIT_VIOLATION if result.violations else EXIT_VACUOUS if unreached else EXIT_OK
    if args.json:
        _print_json(
            {
                **_problem_json(problem),
                "results": [
                    {
                        "invariant": inv,
                        "verdict": verdicts[inv],
                        "trace": _trace_json(result.violations.get(inv, ())),
                    }
                    for inv in invariants
                ],
                "states": result.states,
                "depth": result.depth,
                "covers": sorted(result.covers),
                "cover_required": sorted(required),
                "seconds": round(result.seconds, 3),
                "exit": status,
            }
        )
    else:
        engine = ImplEngine()
        bound = f"to depth {args.max_depth}" if args.max_depth is not None else "all reachable"
        print(f"variant {problem.variant.name}; {_config_text(problem.config)}")
        print(
            f"searched {result.states} states ({bound}, deepest {result.depth}) "
            f"in {result.seconds:.2f} s; covers reached: {', '.join(sorted(result.covers))}"
        )
        for inv in invariants:
            trace = result.violations.get(inv)
            if trace is None and unreached:
                print(f"\n{inv}: vacuous (cover targets not reached: {', '.join(unreached)})")
            elif trace is None:
                print(f"\n{inv}: holds")
            else:
                print(f"\n{inv}: violated in {len(trace)} steps")
                _show_trace(engine, problem, trace)
    if args.emit_case and result.violations:
        how = "kvmmu search (exhaustive, impl)"
        _emit_cases(Path(args.emit_case), ImplEngine(), problem, result.violations, how)
    if args.itf and result.violations:
        how = "kvmmu search (exhaustive, impl)"
        _write_itf(Path(args.itf), ImplEngine(), problem, result.violations, how)
    return status


def _engines(choice: str) -> list[Engine]:
    from kvmmu.conformance.runner import load_engine

    names = ["impl", "spec"] if choice == "both" else [choice]
    return [load_engine(name) for name in names]


def cmd_run(args: argparse.Namespace) -> int:
    """Replay one case on one or both engines, print its trace, and check its expectation."""
    from kvmmu.conformance.case import load_case
    from kvmmu.conformance.check import compare, probes_for
    from kvmmu.render import table

    case = load_case(Path(args.case))
    reports = []
    for engine in _engines(args.engine):
        replay = engine.replay(case.variant, case.config, case.schedule, probes_for(case))
        mismatches = compare(case, replay, engine.name)
        reports.append((engine.name, replay, mismatches))
    if args.json:
        _print_json(
            {
                "case": case.id,
                "path": str(case.path),
                **_problem_json(Problem(case.variant, case.config)),
                "engines": [
                    {
                        "engine": name,
                        "passed": not mismatches,
                        "mismatches": mismatches,
                        "blocked": replay.blocked,
                        "first_violation": dict(replay.first_violation),
                        "steps": [
                            {
                                "index": r.index,
                                **_trace_json([r.step])[0],
                                "changes": r.changes,
                                "violations": sorted(r.violations),
                                "covers": sorted(r.covers),
                            }
                            for r in replay.steps
                        ],
                    }
                    for name, replay, mismatches in reports
                ],
            }
        )
    else:
        print(f"{case.id}: {case.description}")
        print(f"variant {case.variant.name}; {_config_text(case.config)}")
        for name, replay, mismatches in reports:
            rows = [
                [
                    str(r.index),
                    r.step.actor,
                    r.step.name,
                    r.changes,
                    _invariant_status(r.violations),
                ]
                for r in replay.steps
            ]
            if replay.blocked is not None:
                blocked = case.schedule[replay.blocked - 1]
                rows.append([str(replay.blocked), blocked.actor, blocked.name, "(not enabled)", ""])
            print(f"\n[{name}]")
            print(table(["#", "actor", "step", "what changed", "invariants"], rows))
            verdict = "PASS: the expectation holds" if not mismatches else "FAIL:"
            print("\n".join([verdict, *(f"  {m}" for m in mismatches)]))
    return EXIT_VIOLATION if any(m for _, _, m in reports) else EXIT_OK


def _invariant_status(violations: frozenset[str]) -> str:
    return "VIOLATED " + ", ".join(sorted(violations)) if violations else "ok"


def cmd_conform(args: argparse.Namespace) -> int:
    """Run many cases on both engines and summarize."""
    from kvmmu.conformance.runner import discover, run_cases, summary

    try:
        paths = discover(args.paths or ["conformance/cases"])
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    if not paths:
        raise UsageError(f"no case files (*.yaml) in {', '.join(args.paths)}")
    results = run_cases(paths, _engines(args.engine))
    failed = [r for r in results if not r.passed]
    if args.json:
        _print_json(
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


def cmd_diff(args: argparse.Namespace) -> int:
    """Differential check of BMC against the exhaustive search, preset by preset."""
    from kvmmu.differential import knob_sweep, sweep
    from kvmmu.render import table

    if not 1 <= args.max_vcpus <= 3:
        raise UsageError("--max-vcpus must be 1, 2 or 3")
    if args.depth < 1:
        raise UsageError("--depth must be at least 1")
    presets = args.preset_list.split(",") if args.preset_list else list(PRESETS)
    for preset in presets:
        if preset not in PRESETS:
            raise UsageError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    run = knob_sweep if args.knobs == "all" else sweep
    comparisons = run(args.max_vcpus, args.depth, presets, notifier=not args.no_notifier)
    disagree = [c for c in comparisons if not c.agrees]
    if args.json:
        _print_json(
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
    if any(c.spec_verdict not in ("holds", "violated") for c in comparisons):
        return EXIT_UNKNOWN  # the spec gave no answer somewhere: no comparison there
    return EXIT_VIOLATION if disagree else EXIT_OK


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
    bases += [load_variant_file(Path(path)) for path in args.variant]
    if not bases:
        bases = [make_variant(DEFAULT_PRESET)]
    knobs = dict(_parse_knob(k) for k in args.knob)
    vary = [_parse_vary(text) for text in args.vary]
    configs = []
    for vcpus in args.vcpus or ["special,sp"]:
        config = Config(
            vcpus=tuple(k.strip() for k in vcpus.split(",") if k.strip()),
            zappers=1 if args.zappers is None else args.zappers,
            notifier=args.notifier,
            max_zaps=_bound(args.max_zaps or "2", "--max-zaps"),
            max_invalidations=_bound(args.max_invalidations or "1", "--max-invalidations"),
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
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    try:
        variants = expand_variants(bases, knobs, vary)
        return make_sweep(
            variants,
            configs,
            _invariants(args),
            engine,
            bound,
            DEFAULT_TIMEOUT if args.timeout is None else args.timeout,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None


def cmd_explore(args: argparse.Namespace) -> int:
    """Sweep variants, configurations and invariants; print the verdict matrix."""
    from kvmmu import explore

    if args.sweep:
        given = [opt for name, opt in _EXPLORE_PROBLEM_OPTIONS if getattr(args, name)]
        if given:
            raise UsageError(f"--sweep fixes what to explore: drop {', '.join(given)}")
        sweep = explore.load_sweep(Path(args.sweep))
    else:
        sweep = _sweep_from_args(args)
    if args.json and args.format != "text":
        raise UsageError("give --json or --format, not both")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.jobs is not None and args.dask:
        raise UsageError("--jobs runs the cells here, --dask on a cluster: give one")
    progress = explore.ProgressBar() if args.progress or sys.stderr.isatty() else None
    try:
        result = explore.explore(
            sweep,
            jobs=args.jobs,
            dask_address=args.dask,
            replay=bool(args.html),
            progress=progress,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.json:
        _print_json(explore.exploration_json(result))
    elif args.format == "markdown":
        print(explore.matrix_markdown(result), end="")
    else:
        print(explore.matrix_text(result))
    if args.html:
        from kvmmu.report import html_report

        path = Path(args.html)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html_report(result), encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return result.exit_status


# --- kvmmu why: the necessity analysis (spec.why) ------------------------------------------


def cmd_why(args: argparse.Namespace) -> int:
    """Which named facts (guards, lock facts, orderings) the proof of one invariant needs: the
    minimal unsat core over the facts' assumption literals, each fact confirmed by dropping it
    alone, with the shortest counterexample without it."""
    from kvmmu.necessity import exit_status, report_json, report_text
    from spec.why import analyse

    problem = problem_from_args(args)
    if args.invariant not in INVARIANTS:
        raise UsageError(f"unknown invariant {args.invariant!r} (known: {', '.join(INVARIANTS)})")
    if args.depth < 1:
        raise UsageError("--depth must be at least 1")
    if args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    result = analyse(problem.variant, problem.config, args.invariant, args.depth, args.timeout)
    if args.json:
        _print_json(report_json(result))
    else:
        print(report_text(result))
    return exit_status(result)


def _add_why_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    why = sub.add_parser(
        "why",
        help="necessity analysis: which guards, lock facts and orderings a proof needs",
        description="For an invariant that holds (BMC to --depth), find the named facts of the "
        "transition relation (the stale-check parts, the lock facts, the zapper's orderings, "
        "...) that the proof depends on: a minimal unsat core over one assumption literal per "
        "fact, then each fact dropped alone and re-checked, with the shortest counterexample "
        "when the invariant breaks without it. Exit status 0 when the analysis is complete, 1 "
        "when the invariant is violated by the model itself (nothing to explain), 4 vacuous, "
        "3 unknown.",
    )
    add_problem_arguments(why)
    why.add_argument(
        "--invariant", required=True, metavar="NAME", help=f"one of {', '.join(INVARIANTS)}"
    )
    why.add_argument("--depth", type=int, default=20, help="BMC bound in steps (default 20)")
    why.add_argument(
        "--timeout", type=float, default=300.0, help="seconds before 'unknown' (default 300)"
    )
    why.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_parametric(args: argparse.Namespace) -> int:
    """The parametric proof (any number of vCPUs): its own options, see ``--help``."""
    from spec.parametric import main as parametric_main

    return parametric_main(args.rest)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "parametric": cmd_parametric,
    "knobs": cmd_knobs,
    "prove": cmd_prove,
    "search": cmd_search,
    "run": cmd_run,
    "conform": cmd_conform,
    "diff": cmd_diff,
    "explore": cmd_explore,
    "why": cmd_why,
}


def _add_invariant_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--invariant",
        action="append",
        default=[],
        metavar="NAME",
        help=f"check only this invariant (repeatable): {', '.join(INVARIANTS)}",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    knobs = sub.add_parser("knobs", help="list knobs, presets and invariants")
    knobs.add_argument("--json", action="store_true", help="print one JSON object")

    prove = sub.add_parser(
        "prove",
        help="prove invariants with the Z3 spec (BMC or k-induction), or run proof obligations",
        description="With PATHs: run the proof obligations in those files or folders "
        "(proofs/) and check each verdict against its expectation. Without: check the "
        "invariants of the problem given by the options. --engine bmc checks every trace of up "
        "to --depth steps ('holds' means Z3 answered unsat at every depth); --engine kind "
        "proves them for all depths by k-induction with proved lemmas ('proved'), or reports "
        "a counterexample to induction ('not_inductive'). Beside every holds or proved, each "
        "required cover target must be reachable within the bound, else the verdict is "
        "'vacuous'.",
    )
    prove.add_argument("paths", nargs="*", metavar="PATH", help="proof obligation files or folders")
    add_problem_arguments(prove)
    _add_invariant_argument(prove)
    prove.add_argument(
        "--engine",
        choices=["bmc", "kind"],
        default="bmc",
        help="bmc: bounded model checking (default); kind: k-induction",
    )
    prove.add_argument("--depth", type=int, default=20, help="BMC bound in steps (default 20)")
    prove.add_argument(
        "--max-k", type=int, default=30, help="largest k for k-induction (default 30)"
    )
    prove.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds per invariant before 'unknown' (default 300)",
    )
    prove.add_argument("--json", action="store_true", help="print one JSON object")
    prove.add_argument(
        "--emit-case", metavar="PATH", help="write each counterexample as a conformance case (YAML)"
    )
    prove.add_argument(
        "--class",
        dest="klass",
        choices=["small", "full", "all"],
        default="all",
        help="with PATHs: run only the obligations of this class (default all)",
    )
    prove.add_argument("--junit", metavar="FILE", help="with PATHs: write a JUnit XML report")
    prove.add_argument("--json-out", metavar="FILE", help="with PATHs: write the JSON report")
    prove.add_argument(
        "--itf", metavar="FILE", help="write each counterexample as an ITF trace (JSON)"
    )

    search = sub.add_parser(
        "search",
        help="exhaustive search of the implementation's interleavings",
        description="Breadth-first search over all interleavings of the Python implementation, "
        "with state hashing: the first violation found is a shortest one.",
    )
    add_problem_arguments(search)
    _add_invariant_argument(search)
    search.add_argument(
        "--max-depth",
        type=int,
        default=None,
        help="stop at this many steps (default: all reachable states)",
    )
    search.add_argument("--json", action="store_true", help="print one JSON object")
    search.add_argument(
        "--emit-case", metavar="PATH", help="write each counterexample as a conformance case (YAML)"
    )
    search.add_argument(
        "--itf", metavar="FILE", help="write each counterexample as an ITF trace (JSON)"
    )
    run = sub.add_parser(
        "run",
        help="replay one conformance case and check its expectation",
        description="Replay a case's schedule on an engine, print the trace as a table "
        "(step, actor, what changed, invariant status) and check the expectation.",
    )
    run.add_argument("case", metavar="CASE.yaml")
    run.add_argument(
        "--engine",
        choices=["impl", "spec", "both"],
        default="impl",
        help="which engine replays the case (default impl)",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object")

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

    diff = sub.add_parser(
        "diff",
        help="differential check: BMC (spec) against exhaustive search (impl)",
        description="For every preset and configurations of 1 to --max-vcpus vCPUs, compare "
        "the BMC verdict and shortest counterexample length with the implementation's "
        "exhaustive search to the same depth, and replay each engine's counterexample on the "
        "other.",
    )
    diff.add_argument("--max-vcpus", type=int, default=2, help="1 to 3 (default 2)")
    diff.add_argument("--depth", type=int, default=16, help="bound in steps (default 16)")
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
        "sp vCPUs with two zappers): several minutes",
    )
    diff.add_argument("--no-notifier", action="store_true", help="leave the notifier out")
    diff.add_argument("--json", action="store_true", help="print one JSON object")
    _add_explore_parser(sub)
    _add_why_parser(sub)
    parametric = sub.add_parser(
        "parametric",
        help="prove invariants for any number of vCPUs (kvmmu parametric --help)",
        description="One distinguished vCPU of each root kind, the zappers and the notifier as "
        "in the spec, every other vCPU abstracted to its effect on mmu_lock: a proof for every "
        "number of vCPUs (docs/parametric.md). Options: kvmmu parametric --help.",
        add_help=False,
    )
    parametric.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _add_explore_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    group.add_argument("--zappers", type=int, default=None, help="0, 1 or 2 (default 1)")
    group.add_argument("--notifier", action="store_true", help="run the mmu notifier actor")
    group.add_argument("--max-zaps", default=None, help="zaps per zapper or 'none' (default 2)")
    group.add_argument(
        "--max-invalidations", default=None, help="invalidations or 'none' (default 1)"
    )
    _add_invariant_argument(explore)
    group = explore.add_argument_group("engine")
    group.add_argument(
        "--engine",
        choices=["bmc", "kind"],
        default=None,
        help="kind: k-induction (default); bmc: bounded model checking",
    )
    group.add_argument("--depth", type=int, default=None, help="BMC bound (default 20)")
    group.add_argument(
        "--max-k", type=int, default=None, help="largest k for k-induction (default 30)"
    )
    group.add_argument(
        "--timeout", type=float, default=None, help="seconds per cell before 'unknown' (300)"
    )
    group = explore.add_argument_group("running and output")
    group.add_argument(
        "--jobs", type=int, default=None, help="cells in parallel (default: every core)"
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kvmmu`` script: never a traceback for bad input."""
    from kvmmu.yamlio import InputError

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["parametric"]:
        # its options are its own: argparse's REMAINDER would not pass a leading --option on
        args = argparse.Namespace(command="parametric", rest=argv[1:])
    else:
        args = parser.parse_args(argv)
    handler = COMMANDS[args.command]
    try:
        return handler(args)
    except (UsageError, InputError) as err:
        print(f"kvmmu: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # the reader went away (``kvmmu ... | head``): exit as a process killed by SIGPIPE does
        sys.stderr.close()
        return 128 + 13
    except OSError as err:
        # an output or input path that cannot be written or read: bad input, not an engine fault
        print(f"kvmmu: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("kvmmu: interrupted", file=sys.stderr)
        return EXIT_UNKNOWN
    except Exception as err:  # an engine bug must still not dump a traceback on the user
        if os.environ.get("KVMMU_DEBUG"):
            traceback.print_exc()
        print(
            f"kvmmu: internal error: {type(err).__name__}: {err} (KVMMU_DEBUG=1 shows more)",
            file=sys.stderr,
        )
        return EXIT_UNKNOWN


if __name__ == "__main__":
    sys.exit(main())
