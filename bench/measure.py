"""One measurement, run in a process of its own: ``python -m bench.measure SPEC-JSON``.

The parent (``bench.run``) starts one process per measurement, so that neither time nor peak
memory accumulates across measurements (Z3 contexts and the search's visited sets are freed only
when the process ends). The process prints one JSON object on its last line of output:
``{"seconds": wall time of the work alone (imports excluded), "cpu_seconds": its CPU time,
"result": {...}}``; the parent adds
the peak resident set size from ``os.wait4``.

A SPEC is a JSON object with ``"what"`` one of ``bmc``, ``bmc_plain``, ``kind``, ``search``,
``conform``, and the fields read below.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from kvmmu.vocab import INVARIANTS, Config, make_variant

Spec = Mapping[str, Any]
Result = dict[str, Any]

# the solver choices the bench compares (spec.unroll.make_solver is the project's own)
SOLVERS = ("project", "qf_bv", "qf_fd", "default", "qf_bv_phase_false")


def _config(spec: Spec) -> Config:
    return Config(
        vcpus=tuple(spec.get("vcpus", ("special", "sp"))),
        zappers=int(spec.get("zappers", 1)),
        notifier=bool(spec.get("notifier", False)),
        max_zaps=spec.get("max_zaps", 2),
        max_invalidations=spec.get("max_invalidations", 1),
    )


def _use_solver(name: str) -> None:
    """Make every spec engine build its solvers the ``name`` way (``project``: unchanged)."""
    if name == "project":
        return
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r} (known: {', '.join(SOLVERS)})")
    import z3

    import spec.induction
    import spec.lemmas
    import spec.unroll

    def make(ctx: Any) -> Any:
        if name == "default":
            solver = z3.Solver(ctx=ctx)
        else:
            solver = z3.SolverFor("QF_FD" if name == "qf_fd" else "QF_BV", ctx=ctx)
        solver.set("random_seed", 0)
        if name == "qf_bv_phase_false":
            solver.set("sat.phase", "always_false")
        return solver

    spec.unroll.make_solver = make
    spec.induction.make_solver = make  # type: ignore[attr-defined]
    spec.lemmas.make_solver = make  # type: ignore[attr-defined]


def _bmc(spec: Spec) -> Result:
    from spec import bmc, vacuous

    _use_solver(str(spec.get("solver", "project")))
    invariants = spec.get("invariants") or INVARIANTS
    results = bmc(
        make_variant(spec.get("variant", "v5.16")),
        _config(spec),
        invariants,
        int(spec["depth"]),
        timeout_s=None,
    )
    verdicts = {
        r.invariant: ("vacuous" if vacuous(r) else r.verdict)
        + (f" in {r.depth}" if r.verdict == "violated" else "")
        for r in results
    }
    return {"verdicts": verdicts}


def _bmc_plain(spec: Spec) -> Result:
    """BMC of all invariants (no cover targets) to ``depth``, either incremental (one solver,
    extended step by step, as ``spec.bmc``) or not (a fresh solver and unrolling for each
    depth): the same queries, to show what incrementality buys."""
    import z3

    from spec.invariants import BAD
    from spec.unroll import Unrolling
    from spec.variants import make_layout

    _use_solver(str(spec.get("solver", "project")))
    depth = int(spec["depth"])
    layout = make_layout(make_variant(spec.get("variant", "v5.16")), _config(spec), horizon=depth)

    def bad(u: Unrolling, i: int) -> Any:
        s, c, t = u.states[i], u.choices[i], u.states[i + 1]
        return z3.Or([BAD[name](s, c, t) for name in INVARIANTS])

    found = 0
    if spec.get("incremental", True):
        u = Unrolling(layout)
        for k in range(1, depth + 1):
            u.extend()
            answer = u.check(u.literal(bad(u, k - 1)))
            if answer != z3.unsat:
                found = k
                break
            u.solver.add(z3.Not(bad(u, k - 1)))
    else:
        for k in range(1, depth + 1):
            u = Unrolling(layout)
            for _ in range(k):
                u.extend()
            for i in range(k - 1):
                u.solver.add(z3.Not(bad(u, i)))
            if u.check(u.literal(bad(u, k - 1))) != z3.unsat:
                found = k
                break
    return {"verdicts": {"all": f"violated in {found}" if found else "holds"}}


def _kind(spec: Spec) -> Result:
    from spec.induction import prove, vacuous

    _use_solver(str(spec.get("solver", "project")))
    invariants = spec.get("invariants") or INVARIANTS
    results = prove(make_variant(spec.get("variant", "v5.16")), _config(spec), invariants)
    return {
        "verdicts": {
            r.invariant: ("vacuous" if vacuous(r) else r.verdict)
            + (f" (k {r.k})" if r.verdict == "proved" else "")
            for r in results
        }
    }


def _liveness(spec: Spec) -> Result:
    from spec.liveness import prove_liveness

    prop = str(spec.get("property", "fault_progress"))
    r = prove_liveness(make_variant(spec.get("variant", "v5.16")), _config(spec), prop)
    return {"verdicts": {prop: r.verdict + (f" (K {r.k})" if r.verdict == "proved" else "")}}


def _search(spec: Spec) -> Result:
    from impl import explore

    result = explore(
        make_variant(spec.get("variant", "v5.16")),
        _config(spec),
        spec.get("invariants") or INVARIANTS,
        symmetry=bool(spec.get("symmetry", True)),
    )
    return {
        "states": result.states,
        "depth": result.depth,
        "verdicts": {name: f"violated in {len(t)}" for name, t in result.violations.items()},
    }


def _conform(spec: Spec) -> Result:
    from kvmmu.conformance.runner import load_engine, run_cases

    results = run_cases(spec.get("paths", ["conformance/cases"]), [load_engine(spec["engine"])])
    return {"cases": len(results), "passed": sum(1 for r in results if r.passed)}


def _baseline(job: Spec) -> Result:
    """Nothing but the imports every other measurement makes: what start-up costs."""
    import impl as impl_model
    import spec as spec_model

    return {"modules": [impl_model.__name__, spec_model.__name__]}


WHAT: Mapping[str, Callable[[Spec], Result]] = {
    "baseline": _baseline,
    "bmc": _bmc,
    "bmc_plain": _bmc_plain,
    "kind": _kind,
    "liveness": _liveness,
    "search": _search,
    "conform": _conform,
}


def measure(spec: Spec) -> Result:
    """Run one measurement in this process: ``{"seconds", "cpu_seconds", "result"}``."""
    run = WHAT[spec["what"]]
    start, cpu = time.perf_counter(), time.process_time()
    result = run(spec)
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "result": result,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.measure SPEC-JSON", file=sys.stderr)
        return 2
    print(json.dumps(measure(json.loads(args[0]))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
