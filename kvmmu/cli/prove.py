"""``kvmmu prove``: one problem by BMC or k-induction, or proof obligation files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from kvmmu.cli.common import (
    EXIT_OK,
    EXIT_VIOLATION,
    UsageError,
    add_invariant_argument,
    add_problem_arguments,
    chosen_invariants,
    config_text,
    cover_text,
    emit_cases,
    print_json,
    problem_from_args,
    problem_json,
    show_trace,
    verdict_text,
    write_itf,
)
from kvmmu.cli.liveness import add_liveness_arguments, cmd_prove_liveness

if TYPE_CHECKING:
    pass


def cmd_prove(args: argparse.Namespace) -> int:
    """Prove invariants with the Z3 spec: one problem from the options, or obligation files."""
    if args.paths and args.itf:
        raise UsageError("--itf writes the counterexamples of one problem: not with PATHs")
    if args.paths:
        return _prove_obligations(args)
    if args.property:
        return cmd_prove_liveness(args)
    from kvmmu.obligations import verdict_json
    from kvmmu.prover import check, worst_status
    from spec import SpecEngine

    problem = problem_from_args(args)
    invariants = chosen_invariants(args)
    bound = args.depth if args.engine == "bmc" else args.max_k
    if bound < 1:
        raise UsageError("--depth and --max-k must be at least 1")
    if args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    verdicts = check(problem.variant, problem.config, invariants, args.engine, bound, args.timeout)
    status = worst_status([v.exit_status for v in verdicts])
    if args.json:
        results = [verdict_json(v, problem.variant, problem.config, args.timeout) for v in verdicts]
        print_json({**problem_json(problem), "results": results, "exit": status})
    else:
        how = f"depth {bound}" if args.engine == "bmc" else f"k-induction up to k = {bound}"
        print(f"variant {problem.variant.name}; {config_text(problem.config)}; {how}")
        for v in verdicts:
            print(f"\n{v.invariant}: {verdict_text(v)}")
            if v.verdict == "violated":
                show_trace(SpecEngine(), problem, v.trace)
            elif v.cover:
                print(f"  cover within the bound: {cover_text(v.cover, v.required)}")
    traces = {v.invariant: v.trace for v in verdicts if v.verdict == "violated"}
    if args.emit_case and traces:
        how = f"kvmmu prove ({args.engine}, bound {bound})"
        emit_cases(Path(args.emit_case), SpecEngine(), problem, traces, how)
    if args.itf and traces:
        how = f"kvmmu prove ({args.engine}, bound {bound})"
        write_itf(Path(args.itf), SpecEngine(), problem, traces, how)
    return status


def _prove_obligations(args: argparse.Namespace) -> int:
    """Run proof obligation files: a table, and JSON or JUnit XML reports on request."""
    from kvmmu.obligations import junit_xml, load_manifest, outcome_json, run
    from kvmmu.render import table

    # obligation files fix everything about a run: an option given beside them would be ignored
    problem_options = (
        "preset",
        "variant",
        "knob",
        "invariant",
        "emit_case",
        "itf",
        "property",
        "no_fairness",
    )
    fixed = [name for name in problem_options if getattr(args, name, None)]
    defaults = _defaults()
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
            "lasso_depth",
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
            print(f"{mark} {ob.id}: {verdict_text(verdict)}", flush=True)
    failed = [o for o in outcomes if o.mismatch is not None]
    report = {
        "obligations": [outcome_json(o) for o in outcomes],
        "passed": len(outcomes) - len(failed),
        "failed": len(failed),
    }
    if args.json:
        print_json(report)
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


def _defaults() -> argparse.Namespace:
    """The options of ``kvmmu prove`` as they are when none is given."""
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(["prove"])


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``prove`` subcommand."""
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
        "'vacuous'. With --property: the liveness properties of docs/protocol.md 6.11 under "
        "weak fairness (--no-fairness: none), proved by k-liveness ('proved'), or refuted by "
        "the shortest lasso of lasso-shaped BMC ('violated', prefix and loop).",
    )
    prove.add_argument("paths", nargs="*", metavar="PATH", help="proof obligation files or folders")
    add_problem_arguments(prove)
    add_invariant_argument(prove)
    add_liveness_arguments(prove)
    prove.add_argument(
        "--lasso-depth",
        type=int,
        default=30,
        help="with --property: the longest lasso (steps) looked for where the k-liveness proof "
        "does not close, and the bound of the premise cover (default 30)",
    )
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
