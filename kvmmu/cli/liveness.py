"""``kvmmu prove --property`` and ``kvmmu search --property``: the liveness properties of
``docs/protocol.md`` §6.11, with lasso counterexamples (text lanes, JSON and ITF)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from kvmmu.cli.common import (
    EXIT_OK,
    EXIT_UNKNOWN,
    EXIT_VACUOUS,
    EXIT_VIOLATION,
    UsageError,
    config_text,
    print_json,
    problem_from_args,
    problem_json,
    trace_json,
)
from kvmmu.engine import Engine
from kvmmu.vocab import LIVENESS_PROPERTIES, Problem, Step

EXIT_NOT_PROVED = 5  # as "not inductive": the proof did not close, and no lasso was found


def add_liveness_arguments(parser: argparse.ArgumentParser) -> None:
    """``--property`` (repeatable) and ``--no-fairness``."""
    parser.add_argument(
        "--property",
        action="append",
        default=[],
        metavar="NAME",
        help=f"check this liveness property instead of the invariants (repeatable): "
        f"{', '.join(LIVENESS_PROPERTIES)} (docs/protocol.md 6.11)",
    )
    parser.add_argument(
        "--no-fairness",
        action="store_true",
        help="with --property: drop the weak fairness assumption (any infinite run counts)",
    )


def chosen_properties(args: argparse.Namespace) -> tuple[str, ...]:
    if args.invariant:
        raise UsageError("give --invariant or --property, not both")
    for name in args.property:
        if name not in LIVENESS_PROPERTIES:
            known = ", ".join(LIVENESS_PROPERTIES)
            raise UsageError(f"unknown property {name!r} (known: {known})")
    if args.emit_case:
        raise UsageError("--emit-case writes invariant counterexamples: not with --property")
    return tuple(dict.fromkeys(args.property))


def loop_marks(trace_length: int, loop: int) -> dict[int, str]:
    """Notes for the lanes: where the loop starts and where it closes."""
    return {
        loop + 1: "LOOP starts here",
        trace_length: f"LOOP back to the state after step {loop}",
    }


def show_lasso(engine: Engine, problem: Problem, trace: Sequence[Step], loop: int) -> None:
    from kvmmu.render import lanes, replay_states

    _, states = replay_states(engine, problem, trace)
    print(lanes(problem.config, trace, states, loop_marks(len(trace), loop)))


def write_lasso_itf(
    path: Path, engine: Engine, problem: Problem, prop: str, trace: Sequence[Step], loop: int
) -> None:
    """The lasso as an ITF trace with the trace-level ``loop`` field (ADR-015): the index of the
    state that the last state equals, where the loop starts."""
    from kvmmu.cli.common import write_outputs
    from kvmmu.itf import itf_text, trace_document
    from kvmmu.render import replay_states

    replay, states = replay_states(engine, problem, trace)
    document = trace_document(
        problem,
        trace,
        states,
        replay,
        invariant=prop,
        source=f"kvmmu ({engine.name} engine)",
        description=f"Lasso refuting {prop} under {problem.variant.name}: the steps after state "
        f"{loop} repeat forever",
    )
    meta = document["#meta"]
    assert isinstance(meta, dict)
    meta.pop("invariant", None)
    meta.pop("first_violation", None)
    meta["property"] = prop
    document["loop"] = loop
    write_outputs({path: itf_text(document)})


def _itf_path(base: Path, prop: str, several: bool) -> Path:
    from kvmmu.itf import itf_path

    return itf_path(base, prop, several)


def cmd_prove_liveness(args: argparse.Namespace) -> int:
    """k-liveness proofs, else the shortest lasso, with the Z3 spec."""
    from kvmmu.cli.common import output_paths
    from spec import SpecEngine
    from spec.liveness import prove_liveness

    output_paths(args, "--itf")  # checked before any work
    props = chosen_properties(args)
    problem = problem_from_args(args)
    if args.lasso_depth < 1 or args.timeout <= 0:
        raise UsageError("--lasso-depth must be at least 1 and --timeout positive")
    fair = not args.no_fairness
    results = []
    for prop in props:
        r = prove_liveness(
            problem.variant,
            problem.config,
            prop,
            fairness=fair,
            depth=args.lasso_depth,
            cover_depth=args.lasso_depth,
            timeout_s=args.timeout,
        )
        if r.verdict == "error":
            raise UsageError(r.reason)
        results.append(r)
    status = _worst(
        [
            EXIT_VIOLATION
            if r.verdict == "violated"
            else EXIT_UNKNOWN
            if r.verdict == "unknown"
            else EXIT_NOT_PROVED
            if r.verdict == "not_proved"
            else EXIT_VACUOUS
            if r.verdict == "vacuous"
            else EXIT_OK
            for r in results
        ]
    )
    if args.json:
        print_json(
            {
                **problem_json(problem),
                "fairness": fair,
                "results": [
                    {
                        "property": r.prop,
                        "verdict": r.verdict,
                        "vcpu": r.vcpu or None,
                        "trace": trace_json(r.trace),
                        "loop": r.loop_start if r.verdict == "violated" else None,
                        "k": r.k or None,
                        "lemmas": list(r.lemmas),
                        "premise_reached": r.covered,
                        "seconds": round(r.seconds, 3),
                        "reason": r.reason,
                        "z3": r.z3_version,
                    }
                    for r in results
                ],
                "exit": status,
            }
        )
    else:
        how = "weak fairness" if fair else "no fairness"
        print(f"variant {problem.variant.name}; {config_text(problem.config)}; {how}")
        for r in results:
            print(f"\n{r.prop}: {_verdict_text(r.verdict, r.seconds, r.reason)}")
            if r.verdict == "proved":
                print(f"  lemmas: {', '.join(r.lemmas)}")
            if r.verdict == "violated":
                print(f"  {r.vcpu}: prefix {len(r.prefix)} steps, loop {len(r.loop)} steps")
                show_lasso(SpecEngine(), problem, r.trace, r.loop_start)
    violated = [r for r in results if r.verdict == "violated"]
    if args.itf and violated:
        for r in violated:
            path = _itf_path(Path(args.itf), r.prop, len(violated) > 1)
            write_lasso_itf(path, SpecEngine(), problem, r.prop, r.trace, r.loop_start)
    return status


def cmd_search_liveness(args: argparse.Namespace) -> int:
    """The explicit fair-cycle search of the implementation."""
    from impl import ImplEngine
    from impl.fair import find_lasso, reachable_graph
    from impl.model import Model
    from kvmmu.cli.common import output_paths

    output_paths(args, "--itf")  # checked before any work
    props = chosen_properties(args)
    problem = problem_from_args(args)
    if args.max_depth is not None:
        raise UsageError("--max-depth bounds the invariant search: not with --property")
    fair = not args.no_fairness
    try:
        graph = reachable_graph(Model.of(problem.variant, problem.config))
        results = [find_lasso(problem.variant, problem.config, prop, fair, graph) for prop in props]
    except ValueError as err:
        raise UsageError(str(err)) from None
    verdicts = {
        r.prop: r.verdict if r.verdict == "violated" or r.covered else "vacuous" for r in results
    }
    status = _worst(
        [
            EXIT_VIOLATION if v == "violated" else EXIT_VACUOUS if v == "vacuous" else EXIT_OK
            for v in verdicts.values()
        ]
    )
    if args.json:
        print_json(
            {
                **problem_json(problem),
                "fairness": fair,
                "results": [
                    {
                        "property": r.prop,
                        "verdict": verdicts[r.prop],
                        "vcpu": r.vcpu or None,
                        "trace": trace_json(r.trace),
                        "loop": r.loop_start if r.verdict == "violated" else None,
                        "seconds": round(r.seconds, 3),
                    }
                    for r in results
                ],
                "states": results[0].states if results else 0,
                "edges": results[0].edges if results else 0,
                "exit": status,
            }
        )
    else:
        how = "weak fairness" if fair else "no fairness"
        print(f"variant {problem.variant.name}; {config_text(problem.config)}; {how}")
        if results:
            print(f"reachable graph: {results[0].states} states, {results[0].edges} edges")
        for r in results:
            verdict = verdicts[r.prop]
            print(f"\n{r.prop}: {verdict} ({r.seconds:.2f} s)")
            if verdict == "vacuous":
                print("  no reachable state has the environment done and a vCPU in guest mode")
            if r.verdict == "violated":
                print(f"  {r.vcpu}: prefix {len(r.prefix)} steps, loop {len(r.loop)} steps")
                show_lasso(ImplEngine(), problem, r.trace, r.loop_start)
    violated = [r for r in results if r.verdict == "violated"]
    if args.itf and violated:
        for r in violated:
            path = _itf_path(Path(args.itf), r.prop, len(violated) > 1)
            write_lasso_itf(path, ImplEngine(), problem, r.prop, r.trace, r.loop_start)
    return status


def _verdict_text(verdict: str, seconds: float, reason: str) -> str:
    return f"{verdict} ({seconds:.2f} s): {reason}"


def _worst(statuses: Sequence[int]) -> int:
    """The exit status of several results: a violation first, then unknown, then the others."""
    for status in (EXIT_VIOLATION, EXIT_UNKNOWN, EXIT_NOT_PROVED, EXIT_VACUOUS):
        if status in statuses:
            return status
    return EXIT_OK


def cmd_diff_liveness(args: argparse.Namespace, presets: Sequence[str]) -> int:
    """``kvmmu diff --liveness``: every preset, 1 to ``--max-vcpus`` (at most 2) vCPUs."""
    from kvmmu.liveness_diff import sweep_liveness
    from kvmmu.render import table

    if args.max_vcpus > 2:
        raise UsageError("--liveness compares up to 2 vCPUs: --max-vcpus 1 or 2")
    fair = not args.no_fairness
    found = sweep_liveness(
        args.max_vcpus,
        presets,
        notifier=not args.no_notifier,
        fair=fair,
        knobs=args.knobs == "all",
    )
    disagree = [c for c in found if not c.agrees]
    open_ = [c for c in found if c.agrees and not c.conclusive]

    def lasso(n: tuple[int, int] | None) -> str:
        return "" if n is None else f" {n[0]}+{n[1]}"

    if args.json:
        print_json(
            {
                "fairness": fair,
                "comparisons": [
                    {
                        "variant": c.problem.variant.name,
                        "config": c.problem.config.as_dict(),
                        "property": c.prop,
                        "spec": c.spec_verdict,
                        "impl": c.impl_verdict,
                        "spec_lasso": list(c.spec_lasso) if c.spec_lasso else None,
                        "impl_lasso": list(c.impl_lasso) if c.impl_lasso else None,
                        "agrees": c.agrees,
                        "mismatches": list(c.mismatches),
                        "seconds": round(c.seconds, 2),
                    }
                    for c in found
                ],
                "disagreements": len(disagree),
                "inconclusive": len(open_),
            }
        )
    else:
        rows = [
            [
                c.problem.variant.name,
                ",".join(c.problem.config.vcpus),
                c.prop,
                c.spec_verdict + lasso(c.spec_lasso),
                c.impl_verdict + lasso(c.impl_lasso),
                "yes" if c.agrees else "NO: " + "; ".join(c.mismatches),
            ]
            for c in found
        ]
        print(table(["variant", "vcpus", "property", "spec", "impl", "agree"], rows))
        print(
            f"{len(found)} comparisons ({'weak fairness' if fair else 'no fairness'}), "
            f"{len(disagree)} disagree, {len(open_)} inconclusive"
        )
    if disagree:
        return EXIT_VIOLATION
    return EXIT_UNKNOWN if open_ else EXIT_OK
