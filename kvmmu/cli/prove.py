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
    summary_line,
    verdict_text,
    write_outputs,
)
from kvmmu.cli.liveness import add_liveness_arguments, cmd_prove_liveness

if TYPE_CHECKING:
    from kvmmu.prover import Verdict
    from kvmmu.vocab import Problem


DEFAULT_DEPTH = 20
DEFAULT_MAX_K = 30


def cmd_prove(args: argparse.Namespace) -> int:
    """Prove invariants with the Z3 spec: one problem from the options, or obligation files."""
    if args.paths and args.itf:
        raise UsageError("--itf writes the counterexamples of one problem: not with PATHs")
    if args.paths:
        return _prove_obligations(args)
    # the options of obligation files mean nothing for one problem: never drop them silently
    given = [
        option
        for option, value in (
            ("--junit", args.junit),
            ("--json-out", args.json_out),
            ("--class", args.klass),
            ("--no-manifest-rule", args.no_manifest_rule),
        )
        if value
    ]
    if given:
        raise UsageError(f"{', '.join(given)}: only with obligation files (kvmmu prove PATH...)")
    if args.property:
        return cmd_prove_liveness(args)
    from kvmmu.obligations import verdict_json
    from kvmmu.prover import worst_status
    from spec import SpecEngine

    outputs = output_paths(args, "--emit-case", "--itf")
    problem = problem_from_args(args)
    invariants = chosen_invariants(args)
    bound = _bound(args)
    if args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    verdicts = []
    how = f"depth {bound}" if args.engine == "bmc" else f"k-induction up to k = {bound}"
    if not args.json:
        print(f"variant {problem.variant.name}; {config_text(problem.config)}; {how}", flush=True)
    for number, invariant in enumerate(invariants, start=1):
        # one invariant at a time: each verdict has its own time, timeout and heartbeat
        v = _check_one(problem, invariant, args.engine, bound, args.timeout, number, invariants)
        verdicts.append(v)
        if not args.json:
            print(f"\n{v.invariant}: {verdict_text(v, args.verbose)}", flush=True)
            if v.verdict == "violated":
                show_trace(SpecEngine(), problem, v.trace, (v.invariant,))
            elif v.cover:
                print(f"  cover within the bound: {cover_text(v.cover, v.required)}")
    status = worst_status([v.exit_status for v in verdicts])
    if args.json:
        results = [verdict_json(v, problem.variant, problem.config, args.timeout) for v in verdicts]
        print_json({**problem_json(problem), "results": results, "exit": status})
    elif len(verdicts) > 1:
        print(f"\n{summary_line([v.verdict for v in verdicts], status)}")
    traces = {v.invariant: v.trace for v in verdicts if v.verdict == "violated"}
    how = f"kvmmu prove ({args.engine}, bound {bound})"
    files: dict[Path, str] = {}
    if "--emit-case" in outputs and traces:
        files |= emitted_cases(outputs["--emit-case"], SpecEngine(), problem, traces, how)
    if "--itf" in outputs and traces:
        files |= itf_traces(outputs["--itf"], SpecEngine(), problem, traces, how)
    write_outputs(files)
    return status


def _bound(args: argparse.Namespace) -> int:
    """--depth for BMC, --max-k for k-induction; the other engine's bound is rejected."""
    if args.engine == "kind" and args.depth is not None:
        raise UsageError(
            "--depth is the bound of --engine bmc; k-induction takes --max-k (its base case "
            f"runs to max(k, {DEFAULT_DEPTH}) steps)"
        )
    if args.engine == "bmc" and args.max_k is not None:
        raise UsageError("--max-k is the bound of --engine kind; BMC takes --depth")
    if args.engine == "bmc":
        bound: int = DEFAULT_DEPTH if args.depth is None else args.depth
    else:
        bound = DEFAULT_MAX_K if args.max_k is None else args.max_k
    if bound < 1:
        raise UsageError("--depth and --max-k must be at least 1")
    return bound


def _check_one(
    problem: Problem,
    invariant: str,
    engine: str,
    bound: int,
    timeout: float,
    number: int,
    invariants: tuple[str, ...],
) -> Verdict:
    """One invariant's verdict, with a heartbeat on stderr (a terminal only)."""
    from kvmmu.progress import Heartbeat
    from kvmmu.prover import check

    label = f"{invariant} ({number}/{len(invariants)})"
    with Heartbeat(label, unit="depth") as beat:

        def heard(what: str, n: int) -> None:
            beat.at(n, note=f"{what} {n}") if what == "depth" else beat.advance(0, f"{what} {n}")

        (verdict,) = check(
            problem.variant, problem.config, (invariant,), engine, bound, timeout, heard
        )
    return verdict


def _prove_obligations(args: argparse.Namespace) -> int:
    """Run proof obligation files: a table, and JSON or JUnit XML reports on request."""
    from kvmmu.obligations import junit_xml, load_manifest, outcome_json, run
    from kvmmu.progress import Heartbeat
    from kvmmu.render import table

    # obligation files fix everything about a run: an option given beside them would be ignored
    problem_options = (
        "preset",
        "variant",
        "knob",
        "invariant",
        "emit_case",
        "itf",
        "verbose",
        "property",
        "no_fairness",
    )
    fixed = [name for name in problem_options if getattr(args, name, None) not in (None, [], False)]
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
    outputs = output_paths(args, "--json-out", "--junit")
    try:
        obligations = load_manifest(args.paths, manifest_rule=not args.no_manifest_rule)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    klass = args.klass or "all"
    chosen = [ob for ob in obligations if klass in ("all", ob.klass)]
    if not chosen:
        raise UsageError(f"no obligation of class {klass} in {', '.join(args.paths)}")
    outcomes = []
    # a heartbeat on stderr while they run (a terminal only); the results once, as one table
    with Heartbeat("obligations", total=len(chosen), unit="obligation") as beat:
        for ob in chosen:
            beat.advance(0, ob.id)
            outcomes.append(run(ob))
            beat.advance(1)
    failed = [o for o in outcomes if o.mismatch is not None]
    status = EXIT_VIOLATION if failed else EXIT_OK
    report = {
        "obligations": [outcome_json(o) for o in outcomes],
        "passed": len(outcomes) - len(failed),
        "failed": len(failed),
        "exit": status,
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
        header = ["obligation", "invariant", "engine", "expect", "verdict", "seconds", "result"]
        print(table(header, rows))
        print(f"{len(outcomes)} obligations: {report['passed']} as expected, {len(failed)} not")
    files: dict[Path, str] = {}
    if "--json-out" in outputs:
        files[outputs["--json-out"]] = json.dumps(report, indent=2) + "\n"
    if "--junit" in outputs:
        files[outputs["--junit"]] = junit_xml(outcomes) + "\n"
    write_outputs(files)
    return status


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
        "'vacuous'. Each invariant is checked on its own (its own time and --timeout); several "
        "end with a summary line. A heartbeat (the depth reached, the rate, the time) goes to "
        "stderr when it is a terminal. Options that one kind of run cannot use (--depth with "
        "kind, --max-k with bmc, --class/--junit/--json-out without PATHs) are errors. "
        "With --property: the liveness properties of docs/protocol.md 6.11 under "
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
    prove.add_argument(
        "--depth",
        type=steps_option,
        default=None,
        help=f"--engine bmc: the bound in steps (default {DEFAULT_DEPTH})",
    )
    prove.add_argument(
        "--max-k",
        type=steps_option,
        default=None,
        help=f"--engine kind: the largest k (default {DEFAULT_MAX_K}; the base case and the "
        f"covers run to max(k, {DEFAULT_DEPTH}) steps)",
    )
    prove.add_argument(
        "--timeout",
        type=seconds_option,
        default=300.0,
        help="seconds per invariant before 'unknown' (default 300)",
    )
    prove.add_argument("--json", action="store_true", help="print one JSON object")
    prove.add_argument(
        "--verbose", action="store_true", help="name every lemma a proof rests on, not a count"
    )
    prove.add_argument(
        "--emit-case", metavar="PATH", help="write each counterexample as a conformance case (YAML)"
    )
    prove.add_argument(
        "--class",
        dest="klass",
        choices=["small", "full", "all"],
        default=None,
        help="with PATHs: run only the obligations of this class (default all)",
    )
    prove.add_argument(
        "--no-manifest-rule",
        action="store_true",
        help="with PATHs: run one-off obligation files without the manifest rule (every "
        "invariant expected violated somewhere); proofs/ and CI keep the rule",
    )
    prove.add_argument("--junit", metavar="FILE", help="with PATHs: write a JUnit XML report")
    prove.add_argument("--json-out", metavar="FILE", help="with PATHs: write the JSON report")
    prove.add_argument(
        "--itf", metavar="FILE", help="write each counterexample as an ITF trace (JSON)"
    )
