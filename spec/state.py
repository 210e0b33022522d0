"""Symbolic state of the model (``docs/protocol.md`` section 6.2) and derived predicates.

One :class:`State` is one time frame: a dict from variable names to Z3 constants. Roots are not
shared (section 6.2), so each vCPU owns one root record. Everything is a Bool or a small
bit-vector; there are no quantifiers. ``mmu_lock`` and ``slots_lock`` are not variables: they are
*derived* from the actors' positions (a vCPU holds ``mmu_lock`` from ``fault.lock`` to
``fault.unlock``, or forever once crashed; a zapper holds it between ``zap.lock`` and ``zap.unlock``
except after ``zap.unlock_mid``/``zap.yield`` until ``zap.relock``), which is exactly the lock
state of section 6.2 and removes a source of inconsistency. Likewise ``mmu_notifier_count`` is 1
exactly while the single notifier is ``started`` (``mn.start`` needs it idle).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import z3

from spec.variants import (
    PC_BITS,
    PC_GUEST,
    PC_OUTSIDE,
    PCS_HOLDING_LOCK,
    STALE_BITS,
    STALE_NO,
    Layout,
    VcpuInfo,
)

Expr = Any  # a z3.ExprRef (z3 ships no type information)

ROOT_FIELDS: tuple[str, ...] = ("loaded", "gen", "obsolete", "invalid", "freed", "spte")
VCPU_FLAGS: tuple[str, ...] = ("request", "unload_due", "reloaded", "seq_changed", "pfn_stale")
SEQ_BIT31 = "kvm.mmu_notifier_seq_bit31"


def has_seq_bit31(layout: Layout) -> bool:
    """Whether the layout has the K6 ghost: an ``int`` ``mmu_seq`` and a notifier to raise it."""
    return layout.knobs.mmu_seq == "int" and layout.notifier


def _gen_sort(layout: Layout) -> Any:
    if layout.knobs.generation == "bit":
        return z3.BoolSort(layout.ctx)
    return z3.BitVecSort(layout.gen_bits, layout.ctx)


@dataclass(frozen=True)
class State:
    """The variables of one time frame, by name (e.g. ``vcpu0.root.spte``, ``zapper.pc``)."""

    layout: Layout
    vars: dict[str, Expr]

    def __getitem__(self, name: str) -> Expr:
        return self.vars[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.vars)

    # --- constants in this layout's context ---------------------------------------------------

    def const(self, value: bool) -> Expr:
        return bool_val(self.layout, value)

    def bv(self, value: int, bits: int) -> Expr:
        return bv_val(self.layout, value, bits)

    def pc_val(self, pc: int) -> Expr:
        return pc_val(self.layout, pc)

    def stale_val(self, stale: int) -> Expr:
        return stale_val(self.layout, stale)

    # --- vCPU helpers ---------------------------------------------------------------------------

    def pc(self, v: VcpuInfo) -> Expr:
        return self.vars[f"{v.actor}.pc"]

    def at(self, v: VcpuInfo, *pcs: int) -> Expr:
        """The vCPU is at one of these positions."""
        tests = [self.pc(v) == pc_val(self.layout, p) for p in pcs]
        return z3.Or(tests) if tests else self.const(False)

    def root(self, v: VcpuInfo, field: str) -> Expr:
        return self.vars[f"{v.actor}.root.{field}"]

    def flag(self, v: VcpuInfo, field: str) -> Expr:
        return self.vars[f"{v.actor}.{field}"]

    def holds_mmu_lock(self, v: VcpuInfo) -> Expr:
        return self.at(v, *PCS_HOLDING_LOCK)

    def is_obsolete_sp(self, v: VcpuInfo) -> Expr:
        """The kernel's ``is_obsolete_sp()`` on the vCPU's root:
        ``invalid || (kind != tdp && gen != mmu_valid_gen)``."""
        invalid = self.root(v, "invalid")
        if v.kind == "tdp":
            return invalid
        return z3.Or(invalid, self.root(v, "gen") != self.vars["kvm.mmu_valid_gen"])

    # --- zapper and notifier helpers ----------------------------------------------------------

    def zpc(self, zapper: str) -> Expr:
        return self.vars[f"{zapper}.pc"]

    def zat(self, zapper: str, *positions: int) -> Expr:
        bits = self.layout.program.bits
        tests = [self.zpc(zapper) == bv_val(self.layout, p, bits) for p in positions]
        return z3.Or(tests) if tests else self.const(False)

    def zapper_holds_mmu_lock(self, zapper: str) -> Expr:
        return self.zat(zapper, *sorted(self.layout.program.holds_lock))

    def zapper_in_window(self, zapper: str) -> Expr:
        """At or after ``zap.new_gen`` and before ``zap.request`` of the same zap (section 6.4)."""
        return self.zat(zapper, *sorted(self.layout.program.window))

    def holds_slots_lock(self, zapper: str) -> Expr:
        """``slots_lock`` is held by a serialized zapper from ``zap.lock`` to ``zap.unlock``."""
        if not self.layout.knobs.serialized:
            return bool_val(self.layout, False)
        return z3.Not(self.zat(zapper, 0))

    def seq_bit31(self) -> Expr:
        """The K6 ghost ``mmu_notifier_seq_bit31`` (``mmu_notifier_seq >= 2^31``): a variable only
        with ``is_page_fault_stale.mmu_seq: int`` and the notifier, else constantly false."""
        return self.vars.get(SEQ_BIT31, bool_val(self.layout, False))

    def notifier_count_positive(self) -> Expr:
        """``mmu_notifier_count > 0``."""
        if not self.layout.notifier:
            return bool_val(self.layout, False)
        return self.vars["notifier.started"]

    # --- mmu_lock -----------------------------------------------------------------------------

    def has_writer(self) -> Expr:
        holders = [self.holds_mmu_lock(v) for v in self.layout.vcpus if v.lock_mode == "write"]
        holders += [self.zapper_holds_mmu_lock(z) for z in self.layout.zappers]
        return z3.Or(holders) if holders else bool_val(self.layout, False)

    def has_readers(self) -> Expr:
        holders = [self.holds_mmu_lock(v) for v in self.layout.vcpus if v.lock_mode == "read"]
        return z3.Or(holders) if holders else bool_val(self.layout, False)

    def lock_free(self) -> Expr:
        """Neither a writer nor readers."""
        return z3.And(z3.Not(self.has_writer()), z3.Not(self.has_readers()))

    def mmu_lock_holders(self) -> list[tuple[bool, Expr]]:
        """(takes it for write, holds it) for everything that can hold ``mmu_lock`` across
        steps: the vCPUs and the zappers (the notifier takes and drops it within one step, so it
        never *holds* it). The parametric abstraction adds its environment's holds."""
        holders = [(v.lock_mode == "write", self.holds_mmu_lock(v)) for v in self.layout.vcpus]
        holders += [(True, self.zapper_holds_mmu_lock(z)) for z in self.layout.zappers]
        return holders


def bool_val(layout: Layout, value: bool) -> Expr:
    return z3.BoolVal(value, layout.ctx)


def bv_val(layout: Layout, value: int, bits: int) -> Expr:
    return z3.BitVecVal(value, bits, layout.ctx)


def pc_val(layout: Layout, pc: int) -> Expr:
    return bv_val(layout, pc, PC_BITS)


def stale_val(layout: Layout, stale: int) -> Expr:
    return bv_val(layout, stale, STALE_BITS)


def gen_zero(layout: Layout) -> Expr:
    if layout.knobs.generation == "bit":
        return bool_val(layout, False)
    return bv_val(layout, 0, layout.gen_bits)


def gen_next(layout: Layout, gen: Expr) -> Expr:
    """``mmu_valid_gen = mmu_valid_gen ? 0 : 1`` (bit) or ``mmu_valid_gen + 1`` (counter)."""
    if layout.knobs.generation == "bit":
        return z3.Not(gen)
    return gen + 1


def make_state(layout: Layout, suffix: str) -> State:
    """Fresh variables for one time frame, named ``<name>@<suffix>``."""
    ctx = layout.ctx
    names: dict[str, Any] = {"kvm.mmu_valid_gen": _gen_sort(layout)}
    if has_seq_bit31(layout):
        names[SEQ_BIT31] = z3.BoolSort(ctx)
    for v in layout.vcpus:
        names[f"{v.actor}.pc"] = z3.BitVecSort(PC_BITS, ctx)
        for flag in VCPU_FLAGS:
            names[f"{v.actor}.{flag}"] = z3.BoolSort(ctx)
        names[f"{v.actor}.stale"] = z3.BitVecSort(STALE_BITS, ctx)
        for field in ROOT_FIELDS:
            sort = _gen_sort(layout) if field == "gen" else z3.BoolSort(ctx)
            names[f"{v.actor}.root.{field}"] = sort
    for z in layout.zappers:
        names[f"{z}.pc"] = z3.BitVecSort(layout.program.bits, ctx)
        if layout.zaps_bits is not None:
            names[f"{z}.zaps"] = z3.BitVecSort(layout.zaps_bits, ctx)
    if layout.notifier:
        names["notifier.started"] = z3.BoolSort(ctx)
        if layout.invalidations_bits is not None:
            names["notifier.invalidations"] = z3.BitVecSort(layout.invalidations_bits, ctx)
    return State(layout, {n: z3.Const(f"{n}@{suffix}", sort) for n, sort in names.items()})


def initial_values(layout: Layout) -> dict[str, Expr]:
    """The initial state: every vCPU outside with no root and no request, the zappers idle
    before their first ``zap.lock``, the notifier idle, ``mmu_valid_gen`` 0."""
    values: dict[str, Expr] = {"kvm.mmu_valid_gen": gen_zero(layout)}
    false = bool_val(layout, False)
    if has_seq_bit31(layout):
        values[SEQ_BIT31] = false
    for v in layout.vcpus:
        values[f"{v.actor}.pc"] = pc_val(layout, PC_OUTSIDE)
        for flag in VCPU_FLAGS:
            values[f"{v.actor}.{flag}"] = false
        values[f"{v.actor}.stale"] = stale_val(layout, STALE_NO)
        for field in ROOT_FIELDS:
            values[f"{v.actor}.root.{field}"] = gen_zero(layout) if field == "gen" else false
    for z in layout.zappers:
        values[f"{z}.pc"] = bv_val(layout, 0, layout.program.bits)
        if layout.zaps_bits is not None:
            values[f"{z}.zaps"] = bv_val(layout, 0, layout.zaps_bits)
    if layout.notifier:
        values["notifier.started"] = false
        if layout.invalidations_bits is not None:
            values["notifier.invalidations"] = bv_val(layout, 0, layout.invalidations_bits)
    return values


def initial(state: State) -> Expr:
    """The initial-state predicate over ``state``."""
    values = initial_values(state.layout)
    return z3.And([state[name] == value for name, value in values.items()])


def in_guest(state: State, v: VcpuInfo) -> Expr:
    return state.at(v, PC_GUEST)
