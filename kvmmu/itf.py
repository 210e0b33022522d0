"""Counterexamples in the Informal Trace Format (ITF) of Apalache and Quint (Apalache ADR-015).

A trace is one JSON object: ``{"#meta": {...}, "vars": [...], "states": [...]}``; each state is
an object with its own ``#meta`` (``{"index": i, ...}``) and a value for every variable. Values
use the ITF expressions only: booleans, strings, integers as ``{"#bigint": "N"}``, records as
objects and sequences as lists; an optional value is a Quint-style variant
``{"tag": "Some", "value": ...}`` / ``{"tag": "None", "value": {"#tup": []}}`` (ITF has no null).

The variables (docs/formats/ has an example):

- ``action``: ``"init"`` in the first state, then the step that led to the state,
  ``"vcpu0 fault.map"``;
- ``kvm``: ``{mmu_valid_gen, mmu_lock, mmu_notifier_count}``;
- ``vcpu0``, ``vcpu1``, ...: ``{kind, mode, request, unload_due, root, fault_stale}`` where
  ``root`` is an optional ``{gen, obsolete, invalid, freed, spte}`` and ``fault_stale`` an
  optional boolean (present from ``fault.check`` to ``fault.unlock``).

The states are the state paths of ``docs/protocol.md`` section 6.7 as the replaying engine
answers them; each state's ``#meta`` also names the step, the invariants it violates and the
cover targets it reaches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from kvmmu.engine import Replay, StateValue
from kvmmu.vocab import Problem, Step, variant_spec

FORMAT_DESCRIPTION = "https://apalache-mc.org/docs/adr/015adr-trace.html"
ROOT_FIELDS = ("gen", "obsolete", "invalid", "freed", "spte")

Itf = dict[str, object]


def bigint(value: int) -> Itf:
    """An ITF integer: ``{"#bigint": "N"}``."""
    return {"#bigint": str(value)}


def some(value: object) -> Itf:
    return {"tag": "Some", "value": value}


NONE: Itf = {"tag": "None", "value": {"#tup": []}}


def _int(state: Mapping[str, StateValue], path: str) -> Itf:
    value = state.get(path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"ITF: {path} is {value!r}, not a whole number")
    return bigint(value)


def _bool(state: Mapping[str, StateValue], path: str) -> bool:
    value = state.get(path)
    if not isinstance(value, bool):
        raise ValueError(f"ITF: {path} is {value!r}, not a boolean")
    return value


def _str(state: Mapping[str, StateValue], path: str) -> str:
    value = state.get(path)
    if not isinstance(value, str):
        raise ValueError(f"ITF: {path} is {value!r}, not a string")
    return value


def state_vars(problem: Problem, state: Mapping[str, StateValue]) -> dict[str, object]:
    """The ITF variables (but ``action``) of one state given by its section 6.7 paths."""
    out: dict[str, object] = {
        "kvm": {
            "mmu_valid_gen": _int(state, "kvm.mmu_valid_gen"),
            "mmu_lock": _str(state, "kvm.mmu_lock"),
            "mmu_notifier_count": _int(state, "kvm.mmu_notifier_count"),
        }
    }
    for i, kind in enumerate(problem.config.vcpus):
        v = f"vcpu{i}"
        root: Itf = NONE
        if _bool(state, f"{v}.root.loaded"):
            root = some(
                {
                    name: _int(state, f"{v}.root.{name}")
                    if name == "gen"
                    else _bool(state, f"{v}.root.{name}")
                    for name in ROOT_FIELDS
                }
            )
        stale = state.get(f"{v}.fault.stale")
        out[v] = {
            "kind": kind,
            "mode": _str(state, f"{v}.mode"),
            "request": _bool(state, f"{v}.request"),
            "unload_due": _bool(state, f"{v}.unload_due"),
            "root": root,
            "fault_stale": NONE if stale is None else some(bool(stale)),
        }
    return out


def trace_document(
    problem: Problem,
    trace: Sequence[Step],
    states: Sequence[Mapping[str, StateValue]],
    replay: Replay,
    *,
    invariant: str,
    source: str,
    description: str = "",
) -> Itf:
    """The ITF object of a counterexample to ``invariant``: ``states[i]`` is the state after
    ``i`` steps as ``replay``'s engine answered it; ``source`` names the engine (for #meta)."""
    if len(states) != len(trace) + 1:
        raise ValueError(f"ITF: {len(trace)} steps need {len(trace) + 1} states, got {len(states)}")
    records = {r.index: r for r in replay.steps}
    variables = ["action", "kvm", *(f"vcpu{i}" for i in range(len(problem.config.vcpus)))]
    out_states: list[Itf] = []
    for i, state in enumerate(states):
        meta: dict[str, object] = {"index": i}
        if i > 0:
            step = trace[i - 1]
            record = records.get(i)
            meta.update({"actor": step.actor, "step": step.name})
            if record is not None:
                meta["violations"] = sorted(record.violations)
                meta["covers"] = sorted(record.covers)
        out_states.append(
            {
                "#meta": meta,
                "action": "init" if i == 0 else str(trace[i - 1]),
                **state_vars(problem, state),
            }
        )
    return {
        "#meta": {
            "format": "ITF",
            "format-description": FORMAT_DESCRIPTION,
            "source": source,
            "description": description
            or f"Counterexample to {invariant} under {problem.variant.name}",
            "invariant": invariant,
            "first_violation": replay.first_violation.get(invariant),
            "variant": variant_spec(problem.variant),
            "config": problem.config.as_dict(),
        },
        "vars": variables,
        "states": out_states,
    }


def itf_path(base: Path, invariant: str, several: bool) -> Path:
    """Where the trace of ``invariant`` goes: ``base`` itself for one trace, else
    ``NAME-INVARIANT.itf.json`` beside it."""
    if not several:
        return base
    name = base.name
    for suffix in (".itf.json", ".json"):
        if name.endswith(suffix):
            return base.with_name(f"{name[: -len(suffix)]}-{invariant}{suffix}")
    return base.with_name(f"{name}-{invariant}.itf.json")


def itf_text(document: Itf) -> str:
    """``document`` as the JSON text of an ITF file (written by :mod:`kvmmu.outputs`)."""
    return json.dumps(document, indent=2) + "\n"
