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
    emitted_cases,
    itf_traces,
    output_paths,
    print_json,
    problem_from_args,
    problem_json,
    seconds_option,
    show_trace,
    steps_option,
    verdict_text,
    write_outputs,
)

if TYPE_CHECKING:
    pass


def cmd_prove(args: argparse.Namespace) -> int:
    """Prove invariants with the Z3 spec: one problem from the options, or obligation files."""
    if args.paths and args.itf:
        raise UsageError("--itf writes the counterexamples of one problem: not with PATHs")
    if args.paths:
        return _prove_obligations(args)
    if args.json_out or args.junit:
        raise UsageError("--json-out and --junit report on obligation files: give PATHs")
    from kvmmu.obligations import verdict_json
    from kvmmu.prover import check, worst_status
    from spec import SpecEngine

    outputs = output_paths(args, "--emit-case", "--itf")
    problem = problem_from_args(args)
    invariants = chosen_invariants(args)
    bound = args.depth if args.engine == "bmc" else args.max_k
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
    how = f"kvmmu prove ({args.engine}, bound {bound})"
    files: dict[Path, str] = {}
    if "--emit-case" in outputs and traces:
        files |= emitted_cases(outputs["--emit-case"], SpecEngine(), problem, traces, how)
    if "--itf" in outputs and traces:
        files |= itf_traces(outputs["--itf"], SpecEngine(), problem, traces, how)
    write_outputs(files)
    return status


def _prove_obligations(args: argparse.Namespace) -> int:
    """Run proof obligation files: a table, and JSON or JUnit XML reports on request."""
    from kvmmu.obligations import junit_xml, load_manifest, outcome_json, run
    from kvmmu.render import table

    # obligation files fix everything about a run: an option given beside them would be ignored
    problem_options = ("preset", "variant", "knob", "invariant", "emit_case", "itf")
    fixed = [name for name in problem_options if getattr(args, name) not in (None, [])]
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
        )
        if getattr(args, name) != getattr(defaults, name)
    ]
    if fixed or changed:
        shown = ", ".join("--" + n.replace("_", "-") for n in fixed + changed)
        raise UsageError(
            f"obligation files fix the variant, configuration and engine: drop {shown}"
        )
    outputs = output_paths(args, "--json-out", "--junit")
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
    files: dict[Path, str] = {}
    if "--json-out" in outputs:
        files[outputs["--json-out"]] = json.dumps(report, indent=2) + "\n"
    if "--junit" in outputs:
        files[outputs["--junit"]] = junit_xml(outcomes) + "\n"
    write_outputs(files)
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
        "'vacuous'.",
    )
    prove.add_argument("paths", nargs="*", metavar="PATH", help="proof obligation files or folders")
    add_problem_arguments(prove)
    add_invariant_argument(prove)
    prove.add_argument(
        "--engine",
        choices=["bmc", "kind"],
        default="bmc",
        help="bmc: bounded model checking (default); kind: k-induction",
    )
    prove.add_argument(
        "--depth", type=steps_option, default=20, help="BMC bound in steps (default 20)"
    )
    prove.add_argument(
        "--max-k", type=steps_option, default=30, help="largest k for k-induction (default 30)"
    )
    prove.add_argument(
        "--timeout",
        type=seconds_option,
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
