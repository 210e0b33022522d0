"""The front of the necessity analysis (``kvmmu why``): its text report, its JSON and its exit
status. The analysis itself is :mod:`spec.why`; the facts are :mod:`spec.facts`.

"Is the reload-pending check needed?" is answered per invariant and configuration: the check is
the fact ``is_page_fault_stale.reload_request`` (the ``!sp && kvm_test_request()`` half of
18c841e1f411's ``is_page_fault_stale()``); ``kvmmu why`` says whether the proof of the invariant
(BMC to the bound) needs it, and shows the shortest counterexample without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kvmmu.engine import StateValue
from kvmmu.prover import EXIT_STATUS, SEED
from kvmmu.vocab import Config, Step, variant_spec
from spec.why import FactReport, WhyResult, marks, table_rows

EXIT_ERROR = 3


def exit_status(result: WhyResult) -> int:
    """0 when the invariant holds and the analysis is complete, 1 when the invariant is violated
    (necessity is meaningless then), 4 vacuous, 3 unknown or error."""
    if result.verdict == "error":
        return EXIT_ERROR
    return EXIT_STATUS[result.verdict]


def _trace_json(trace: Sequence[Step]) -> list[dict[str, str]]:
    return [{"actor": s.actor, "step": s.name} for s in trace]


def _fact_json(report: FactReport) -> dict[str, object]:
    d = report.dropped
    dropped: dict[str, object] = {
        "verdict": d.verdict,
        "depth": d.depth,
        "trace": _trace_json(d.trace),
        "exploits": list(d.exploits),
    }
    if d.reason:
        dropped["reason"] = d.reason
    return {
        "fact": report.fact.name,
        "meaning": report.fact.meaning,
        "kernel": report.fact.kernel,
        "when_dropped": report.fact.dropped,
        "in_core": report.in_core,
        "necessary": report.necessary,
        "replaceable": report.replaceable,
        "dropped": dropped,
    }


def report_json(result: WhyResult) -> dict[str, object]:
    """The result as JSON data (README, ``kvmmu why --json``)."""
    base = result.base
    doc: dict[str, object] = {
        "variant": {"name": result.variant.name, "knobs": result.variant.as_dict()},
        "spec": variant_spec(result.variant),
        "config": result.config.as_dict(),
        "invariant": result.invariant,
        "method": "bmc",
        "bound": result.bound,
        "verdict": result.verdict,
        "base": None
        if base is None
        else {
            "verdict": base.verdict,
            "depth": base.depth,
            "trace": _trace_json(base.trace),
            "cover": dict(base.cover),
            "cover_required": sorted(base.required_covers),
        },
        "core": list(result.core),
        "facts": [_fact_json(r) for r in result.facts],
        "seconds": round(result.seconds, 3),
        "z3": result.z3_version,
        "seed": SEED,
        "exit": exit_status(result),
    }
    if result.reason:
        doc["reason"] = result.reason
    return doc


def _config_text(config: Config) -> str:
    parts = [f"vcpus {','.join(config.vcpus)}", f"zappers {config.zappers}"]
    parts.append(f"max_zaps {'unbounded' if config.max_zaps is None else config.max_zaps}")
    if config.notifier:
        bound = config.max_invalidations
        parts += ["notifier", f"max_invalidations {'unbounded' if bound is None else bound}"]
    return ", ".join(parts)


def _lanes(
    config: Config,
    trace: Sequence[Step],
    states: Sequence[Mapping[str, StateValue]],
    notes: Mapping[int, str],
) -> str:
    from kvmmu.render import lanes

    return lanes(config, trace, states, notes)


def report_text(result: WhyResult) -> str:
    """The report: the verdict of the plain model, the core, the table ``fact | in core |
    dropped alone | counterexample``, and each counterexample as per-actor lanes."""
    from kvmmu.render import table

    head = (
        f"variant {result.variant.name}; {_config_text(result.config)}; BMC to depth {result.bound}"
    )
    lines = [head, ""]
    base = result.base
    if result.verdict != "holds":
        lines.append(f"{result.invariant}: {result.verdict} ({result.seconds:.2f} s)")
        if result.reason:
            lines.append(f"  reason: {result.reason}")
        if base is not None and base.verdict == "violated":
            lines.append(f"  violated in {base.depth} steps by the model itself:")
            notes = {base.depth: f"VIOLATES {result.invariant}"}
            lines.append(_lanes(result.config, base.trace, base.states, notes))
        lines.append(
            "necessity is only meaningful for an invariant that holds: no fact was examined"
        )
        return "\n".join(lines)
    lines.append(
        f"{result.invariant}: holds to depth {result.bound}, every required cover reached "
        f"({result.seconds:.2f} s)"
    )
    core = ", ".join(result.core) or "(none: the invariant holds with every fact dropped)"
    lines.append(f"facts the proof needs (minimal unsat core, BMC to depth {result.bound}): {core}")
    lines.append("")
    lines.append(table(["fact", "in core", "dropped alone", "counterexample"], table_rows(result)))
    replaceable = [r.fact.name for r in result.facts if r.replaceable]
    if replaceable:
        lines.append(
            f"replaceable (in this core, but the invariant holds without it alone: another fact "
            f"does its job): {', '.join(replaceable)}"
        )
    surprising = [r.fact.name for r in result.facts if r.necessary and not r.in_core]
    if surprising:
        lines.append(f"NOTE: needed alone but not in the core: {', '.join(surprising)}")
    for r in result.facts:
        d = r.dropped
        if d.verdict != "violated":
            continue
        lines += [
            "",
            f"without {r.fact.name}: {result.invariant} violated in {d.depth} steps",
            f"  the fact: {r.fact.meaning}",
            f"  kernel:   {r.fact.kernel}",
            f"  dropped:  {r.fact.dropped}",
            _lanes(result.config, d.trace, d.states, marks(r, result.invariant)),
        ]
    return "\n".join(lines)
