"""Reading a Z3 model back: the step choices as :class:`Step` and the states as the state paths of
``docs/protocol.md`` section 6.7."""

from __future__ import annotations

from typing import Any

import z3

from kvmmu.engine import StateValue
from kvmmu.vocab import Step
from spec.state import Expr, State
from spec.variants import (
    PC_CRASHED,
    PC_GUEST,
    PC_MAP,
    PC_OUTSIDE,
    PC_UNLOCK,
    STALE_NO,
    Layout,
)

Model = Any  # a z3.ModelRef


def _value(model: Model, expr: Expr) -> int | bool:
    val = model.eval(expr, model_completion=True)
    if z3.is_bool(val):
        return bool(z3.is_true(val))
    return int(val.as_long())


def decode_step(layout: Layout, model: Model, choice: Expr) -> Step:
    return layout.choices[int(_value(model, choice))]


def _mode(pc: int) -> str:
    if pc == PC_OUTSIDE:
        return "outside"
    if pc == PC_GUEST:
        return "guest"
    if pc == PC_CRASHED:
        return "crashed"
    return "fault"


def decode_state(model: Model, s: State) -> dict[str, StateValue]:
    """The section 6.7 state paths of ``s`` in ``model``. Root fields are present only while a
    root is loaded, ``vcpuN.fault.stale`` only after ``fault.check`` of the current fault."""
    layout = s.layout
    out: dict[str, StateValue] = {}
    out["kvm.mmu_valid_gen"] = int(_value(model, s["kvm.mmu_valid_gen"]))
    if _value(model, s.has_writer()):
        out["kvm.mmu_lock"] = "write"
    elif _value(model, s.has_readers()):
        out["kvm.mmu_lock"] = "read"
    else:
        out["kvm.mmu_lock"] = "free"
    out["kvm.mmu_notifier_count"] = int(_value(model, s.notifier_count_positive()))
    for v in layout.vcpus:
        a = v.actor
        pc = int(_value(model, s.pc(v)))
        out[f"{a}.mode"] = _mode(pc)
        out[f"{a}.request"] = bool(_value(model, s.flag(v, "request")))
        out[f"{a}.unload_due"] = bool(_value(model, s.flag(v, "unload_due")))
        loaded = bool(_value(model, s.root(v, "loaded")))
        out[f"{a}.root.loaded"] = loaded
        out[f"{a}.root.gen"] = int(_value(model, s.root(v, "gen"))) if loaded else None
        for field in ("obsolete", "invalid", "freed", "spte"):
            out[f"{a}.root.{field}"] = bool(_value(model, s.root(v, field))) if loaded else None
        stale: StateValue = None
        if pc in (PC_MAP, PC_UNLOCK):
            stale = int(_value(model, s.flag(v, "stale"))) != STALE_NO
        out[f"{a}.fault.stale"] = stale
    return out


def describe_changes(before: dict[str, StateValue], after: dict[str, StateValue]) -> str:
    """A short text of the state paths that changed, e.g. ``vcpu0.mode: outside -> guest``."""
    parts = []
    for path, value in after.items():
        old = before.get(path)
        if old != value:
            parts.append(f"{path}: {_show(old)} -> {_show(value)}")
    return ", ".join(parts)


def _show(value: StateValue) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
