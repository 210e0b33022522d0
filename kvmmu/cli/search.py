"""``kvmmu search``: exhaustive search of the implementation's interleavings."""

from __future__ import annotations

import argparse
from pathlib import Path

from kvmmu.cli.common import (
    EXIT_OK,
    EXIT_VACUOUS,
    EXIT_VIOLATION,
    UsageError,
    add_invariant_argument,
    add_problem_arguments,
    chosen_invariants,
    config_text,
    emitted_cases,
    itf_traces,
    output_paths,
    print_json,
    problem_from_args,
    problem_json,
    show_trace,
    steps_option,
    summary_line,
    trace_json,
    write_outputs,
)
from kvmmu.cli.liveness import add_liveness_arguments, cmd_search_liveness
from kvmmu.vocab import (
    Knobs,
    required_covers,
)


def cmd_search(args: argparse.Namespace) -> int:
    """Exhaustive breadth-first search of the implementation's interleavings."""
    from impl import ImplEngine, explore

    if args.property:
        return cmd_search_liveness(args)
    problem = problem_from_args(args)
    invariants = chosen_invariants(args)
    if args.max_depth is not None and args.max_depth < 1:
        raise UsageError("--max-depth must be at least 1")
    from kvmmu.progress import Heartbeat

    outputs = output_paths(args, "--emit-case", "--itf")
    try:
        with Heartbeat("search", unit="states") as beat:
            depth = [0]

            def heard(what: str, n: int) -> None:
                # the heartbeat counts states; the depth reached goes beside it
                if what == "depth":
                    depth[0] = n
                else:
                    beat.at(n, note=f"depth {depth[0]}")

            result = explore(
                problem.variant, problem.config, invariants, args.max_depth, progress=heard
            )
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
        print_json(
            {
                **problem_json(problem),
                "results": [
                    {
                        "invariant": inv,
                        "verdict": verdicts[inv],
                        "trace": trace_json(result.violations.get(inv, ())),
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
        print(f"variant {problem.variant.name}; {config_text(problem.config)}")
        print(
            f"searched {result.states} states ({bound}, deepest {result.depth}) "
            f"in {result.seconds:.2f} s; covers reached: "
            f"{', '.join(sorted(result.covers)) or 'none'}"
        )
        for inv in invariants:
            trace = result.violations.get(inv)
            if trace is None and unreached:
                print(f"\n{inv}: vacuous (cover targets not reached: {', '.join(unreached)})")
            elif trace is None:
                print(f"\n{inv}: holds")
            else:
                print(f"\n{inv}: violated in {len(trace)} steps")
                show_trace(engine, problem, trace, (inv,))
        if len(invariants) > 1:
            print(f"\n{summary_line(list(verdicts.values()), status)}")
    how = "kvmmu search (exhaustive, impl)"
    files: dict[Path, str] = {}
    if "--emit-case" in outputs and result.violations:
        files |= emitted_cases(
            outputs["--emit-case"], ImplEngine(), problem, result.violations, how
        )
    if "--itf" in outputs and result.violations:
        files |= itf_traces(outputs["--itf"], ImplEngine(), problem, result.violations, how)
    write_outputs(files)
    return status


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``search`` subcommand."""
    search = sub.add_parser(
        "search",
        help="exhaustive search of the implementation's interleavings",
        description="Breadth-first search over all interleavings of the Python implementation, "
        "with state hashing: the first violation found is a shortest one. With --property: "
        "the fair cycles of the reachable graph (strongly connected components under weak "
        "fairness, docs/protocol.md 6.11), a lasso when one refutes the property.",
    )
    add_problem_arguments(search)
    add_invariant_argument(search)
    add_liveness_arguments(search)
    search.add_argument(
        "--max-depth",
        type=steps_option,
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
