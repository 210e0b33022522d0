"""The transitions: one per step of ``docs/protocol.md`` section 6.3, with guard and explicit frame.

Each step is a :class:`Transition`: its guard (the actor is at the step's position and the step's
condition holds) and its *updates*, a dict from state variable to its new value, as expressions
over the state before the step. Every variable a transition does not update keeps its value: the
frame is built once, by :func:`encode`, which turns the transitions into the functional relation

    T(s, c, s') :=  AND_k (c = k  ->  guard_k(s))
                    AND  for every variable x:  s'.x = ite(c = k1, e1(s), ite(c = k2, ..., s.x))

where ``c`` is the step choice of this depth (a bit-vector numbering the steps of
``Layout.choices``). The relation is deterministic: the step sequence fixes the state.

The guards, lock facts and orderings named in :mod:`spec.facts` (e.g. part 2 of
``is_page_fault_stale()``, ``is_page_fault_stale.reload_request``) go through
:func:`~spec.facts.guard` and :func:`~spec.facts.unless_dropped`: Python-level
switches that return the section 6.3 term unchanged, unless the layout was built for the
necessity analysis (``kvmmu why``) with that fact relaxed, where the term depends on the fact's
assumption literal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import z3

from kvmmu.vocab import Step
from spec.facts import guard as fact_guard
from spec.facts import literal as fact_literal
from spec.facts import unless_dropped
from spec.state import SEQ_BIT31, Expr, State, bv_val, gen_next, has_seq_bit31
from spec.variants import (
    FAULT_STEP_PC,
    PC_CHECK,
    PC_CHECK_REQUEST,
    PC_CRASHED,
    PC_FAULTIN,
    PC_GUEST,
    PC_LOCK,
    PC_MAP,
    PC_OUTSIDE,
    PC_SNAPSHOT,
    PC_UNLOCK,
    STALE_NO,
    STALE_NOTIFIER,
    STALE_OBSOLETE,
    Layout,
    VcpuInfo,
)


@dataclass(frozen=True)
class Transition:
    """One step: when it is enabled and what it changes (all other state stays)."""

    step: Step
    guard: Expr
    updates: Mapping[str, Expr] = field(default_factory=dict)


# --- vCPU: the vcpu_enter_guest() loop -----------------------------------------------------------


def vcpu_check_request(s: State, v: VcpuInfo) -> Transition:
    """``kvm_check_request(KVM_REQ_MMU_RELOAD, vcpu)`` in ``vcpu_enter_guest()``: outside the
    guest, with the request pending and no unload due: clear the request, an unload is due
    (with ``kvm_mmu_free_obsolete_roots.is_obsolete_root: lockless``, v5.18: only if the
    lockless ``is_obsolete_root()`` says the root is obsolete now)."""
    a = v.actor
    guard = z3.And(s.at(v, PC_OUTSIDE), z3.Not(s.flag(v, "unload_due")), s.flag(v, "request"))
    due: Expr = s.const(True)
    knobs = s.layout.knobs
    if knobs.request == "free_obsolete" and knobs.is_obsolete_root == "lockless":
        # v5.18 __kvm_mmu_free_obsolete_roots(): roots_to_free decided here, without mmu_lock
        obsolete = s.const(True) if not v.has_sp else s.is_obsolete_sp(v)
        due = z3.And(s.root(v, "loaded"), obsolete)
    return Transition(
        Step(a, "vcpu.check_request"),
        guard,
        {f"{a}.request": s.const(False), f"{a}.unload_due": due},
    )


def vcpu_unload(s: State, v: VcpuInfo) -> Transition:
    """``kvm_mmu_unload()`` (``request: reload``) or ``kvm_mmu_free_obsolete_roots()``
    (``request: free_obsolete``, v5.18 ``is_obsolete_root()``): take and drop ``mmu_lock`` for
    write in one step; drop the root (``root_count`` 0: freed if invalid, forgotten either way)."""
    a = v.actor
    layout = s.layout
    guard = z3.And(s.at(v, PC_OUTSIDE), s.flag(v, "unload_due"), s.lock_free())
    if (
        layout.knobs.request == "reload"
        or not v.has_sp
        or layout.knobs.is_obsolete_root == "lockless"
    ):
        drop = s.const(True)  # (lockless: is_obsolete_root() was decided at vcpu.check_request)
    else:
        drop = s.is_obsolete_sp(v)
    fact = (
        "kvm_mmu_unload.drops_root"
        if layout.knobs.request == "reload"
        else "kvm_mmu_free_obsolete_roots.drops_obsolete_root"
    )
    drop = unless_dropped(layout, fact, drop, s.const(False))
    return Transition(
        Step(a, "vcpu.unload"),
        guard,
        {
            f"{a}.unload_due": s.const(False),
            f"{a}.reloaded": s.const(True),
            f"{a}.root.loaded": z3.And(s.root(v, "loaded"), z3.Not(drop)),
        },
    )


def vcpu_load(s: State, v: VcpuInfo) -> Transition:
    """``kvm_mmu_reload()`` -> ``kvm_mmu_load()``: with no root, under ``mmu_lock`` (write), a new
    root of the vCPU's kind stamped with the current ``mmu_valid_gen``, ``root_count`` 1."""
    a = v.actor
    guard = z3.And(
        s.at(v, PC_OUTSIDE),
        z3.Not(s.flag(v, "unload_due")),
        z3.Not(s.root(v, "loaded")),
        fact_guard(s.layout, "kvm_mmu_load.takes_mmu_lock", s.lock_free()),
    )
    false = s.const(False)
    return Transition(
        Step(a, "vcpu.load"),
        guard,
        {
            f"{a}.root.loaded": s.const(True),
            f"{a}.root.gen": s["kvm.mmu_valid_gen"],
            f"{a}.root.obsolete": false,
            f"{a}.root.invalid": false,
            f"{a}.root.freed": false,
            f"{a}.root.spte": false,
        },
    )


def vcpu_enter(s: State, v: VcpuInfo) -> Transition:
    """VM-entry in ``vcpu_enter_guest()`` after ``kvm_vcpu_exit_request()``: root loaded, no
    request pending: enter guest mode."""
    guard = z3.And(
        s.at(v, PC_OUTSIDE),
        z3.Not(s.flag(v, "unload_due")),
        s.root(v, "loaded"),
        fact_guard(s.layout, "vcpu_enter_guest.request_check", z3.Not(s.flag(v, "request"))),
    )
    return Transition(Step(v.actor, "vcpu.enter"), guard, {f"{v.actor}.pc": s.pc_val(PC_GUEST)})


def vcpu_fault(s: State, v: VcpuInfo) -> Transition:
    """VM-exit on a page fault (``kvm_mmu_page_fault()``): leave guest mode, start the fault."""
    return Transition(
        Step(v.actor, "vcpu.fault"),
        s.at(v, PC_GUEST),
        {f"{v.actor}.pc": s.pc_val(PC_SNAPSHOT)},
    )


# --- vCPU: the fault path (direct_page_fault(), FNAME(page_fault)) -------------------------------


def fault_snapshot(s: State, v: VcpuInfo) -> Transition:
    """``mmu_seq = kvm->mmu_notifier_seq``: no ``mn.end`` since the snapshot yet."""
    a = v.actor
    return Transition(
        Step(a, "fault.snapshot"),
        s.at(v, PC_SNAPSHOT),
        {f"{a}.seq_changed": s.const(False), f"{a}.pc": s.pc_val(PC_FAULTIN)},
    )


def fault_faultin(s: State, v: VcpuInfo) -> Transition:
    """``kvm_faultin_pfn()``: read the host pfn without the lock; a pfn read during an
    invalidation (``mmu_notifier_count > 0``) may be the old one."""
    a = v.actor
    after = PC_CHECK_REQUEST if s.layout.knobs.request_before_lock else PC_LOCK
    return Transition(
        Step(a, "fault.faultin"),
        s.at(v, PC_FAULTIN),
        {f"{a}.pfn_stale": s.notifier_count_positive(), f"{a}.pc": s.pc_val(after)},
    )


def request_part(s: State, v: VcpuInfo) -> Expr:
    """Part 2 of ``is_page_fault_stale()`` (18c841e1f411): no sp and a reload request pending."""
    if s.layout.knobs.reload_request == "none" or v.has_sp:
        return s.const(False)
    return unless_dropped(
        s.layout, "is_page_fault_stale.reload_request", s.flag(v, "request"), s.const(False)
    )


def fault_check_request(s: State, v: VcpuInfo) -> Transition:
    """What-if ``stale_check.request_before_lock``: the reload-request part of
    ``is_page_fault_stale()`` before ``fault.lock``; stale ends the fault here (a retry);
    ``kvm_check_request`` (``check``) clears the bit when it says stale."""
    a = v.actor
    stale = request_part(s, v)
    updates: dict[str, Expr] = {
        f"{a}.pc": z3.If(stale, s.pc_val(PC_OUTSIDE), s.pc_val(PC_LOCK)),
    }
    if s.layout.knobs.reload_request == "check":
        updates[f"{a}.request"] = z3.And(s.flag(v, "request"), z3.Not(stale))
    return Transition(Step(a, "fault.check_request"), s.at(v, PC_CHECK_REQUEST), updates)


def fault_lock(s: State, v: VcpuInfo) -> Transition:
    """``write_lock(&kvm->mmu_lock)`` or ``read_lock()`` (TDP MMU, ``kvm_tdp_mmu_map()`` path):
    write needs the lock free, read needs no writer."""
    free = s.lock_free() if v.lock_mode == "write" else z3.Not(s.has_writer())
    free = fact_guard(s.layout, "fault.holds_mmu_lock", free)
    return Transition(
        Step(v.actor, "fault.lock"),
        z3.And(s.at(v, PC_LOCK), free),
        {f"{v.actor}.pc": s.pc_val(PC_CHECK)},
    )


def fault_check(s: State, v: VcpuInfo) -> Transition:
    """``is_page_fault_stale()``: the first true part, in order (short-circuit):
    1. obsolete sp (``sp && is_obsolete_sp()``, or unguarded: a NULL ``sp`` crashes),
    2. reload request pending and no sp (``kvm_test_request``/``kvm_check_request``),
    3. ``mmu_notifier_retry_hva()``: an invalidation in progress or the sequence changed."""
    a = v.actor
    layout = s.layout
    knobs = layout.knobs
    step = Step(a, "fault.check")
    guard = s.at(v, PC_CHECK)
    crashes = knobs.obsolete_sp == "unguarded" and not v.has_sp
    obsolete_fact = fact_literal(layout, "is_page_fault_stale.obsolete_sp")
    if crashes and obsolete_fact is None:
        # a955cad84cda: to_shadow_page(root)->role.invalid with a NULL sp: the vCPU crashes,
        # still holding mmu_lock
        return Transition(step, guard, {f"{a}.pc": s.pc_val(PC_CRASHED)})
    part1: Expr = s.const(False)
    if knobs.obsolete_sp != "none" and v.has_sp:
        part1 = unless_dropped(
            layout, "is_page_fault_stale.obsolete_sp", s.is_obsolete_sp(v), s.const(False)
        )
    part2 = s.const(False) if knobs.request_before_lock else request_part(s, v)
    part3: Expr = s.const(False)
    if knobs.mmu_notifier:
        part3 = unless_dropped(
            layout,
            "is_page_fault_stale.mmu_notifier",
            # K6 (is_page_fault_stale.mmu_seq: int): the sign-extended int snapshot never
            # equals a sequence >= 2^31
            z3.Or(s.notifier_count_positive(), s.flag(v, "seq_changed"), s.seq_bit31()),
            s.const(False),
        )
    obsolete = z3.Or(part1, part2)
    stale = z3.If(
        obsolete,
        s.stale_val(STALE_OBSOLETE),
        z3.If(part3, s.stale_val(STALE_NOTIFIER), s.stale_val(STALE_NO)),
    )
    updates: dict[str, Expr] = {
        f"{a}.stale": stale,
        f"{a}.pc": z3.If(z3.Or(obsolete, part3), s.pc_val(PC_UNLOCK), s.pc_val(PC_MAP)),
    }
    if knobs.reload_request == "check" and not knobs.request_before_lock:
        # kvm_check_request clears the bit, only when evaluated (part 1 false) and true
        updates[f"{a}.request"] = z3.And(s.flag(v, "request"), z3.Not(z3.And(z3.Not(part1), part2)))
    if crashes:
        # the obsolete-sp fact is relaxed: the NULL dereference happens only where it holds
        updates = {
            name: z3.If(obsolete_fact, s.pc_val(PC_CRASHED) if name == f"{a}.pc" else s[name], e)
            for name, e in updates.items()
        }
    return Transition(step, guard, updates)


def fault_map(s: State, v: VcpuInfo) -> Transition:
    """``__direct_map()`` / ``FNAME(fetch)`` / ``kvm_tdp_mmu_map()``: install an SPTE for the pfn
    under the current root (for a special root: in its child)."""
    return Transition(
        Step(v.actor, "fault.map"),
        s.at(v, PC_MAP),
        {
            f"{v.actor}.root.spte": s.const(True),
            f"{v.actor}.pc": s.pc_val(PC_UNLOCK),
        },
    )


def fault_unlock(s: State, v: VcpuInfo) -> Transition:
    """``write_unlock()``/``read_unlock(&kvm->mmu_lock)``, return ``RET_PF_FIXED`` or
    ``RET_PF_RETRY``: back to the ``vcpu_enter_guest()`` loop."""
    return Transition(
        Step(v.actor, "fault.unlock"),
        s.at(v, PC_UNLOCK),
        {f"{v.actor}.pc": s.pc_val(PC_OUTSIDE)},
    )


VCPU_BUILDERS = {
    "vcpu.check_request": vcpu_check_request,
    "vcpu.unload": vcpu_unload,
    "vcpu.load": vcpu_load,
    "vcpu.enter": vcpu_enter,
    "vcpu.fault": vcpu_fault,
    "fault.snapshot": fault_snapshot,
    "fault.faultin": fault_faultin,
    "fault.check_request": fault_check_request,
    "fault.lock": fault_lock,
    "fault.check": fault_check,
    "fault.map": fault_map,
    "fault.unlock": fault_unlock,
}
assert set(FAULT_STEP_PC) <= set(VCPU_BUILDERS)


# --- zapper: kvm_mmu_zap_all_fast() -------------------------------------------------------------


def _zapper_move(s: State, zapper: str, step: str) -> tuple[Expr, Expr]:
    """(at one of the step's positions, the next position) for a zapper step."""
    program = s.layout.program
    bits = program.bits
    here = program.positions_of(step)
    nxt: Expr = s.bv(program.positions[here[-1]][step], bits)
    for p in reversed(here[:-1]):
        nxt = z3.If(s.zpc(zapper) == p, s.bv(program.positions[p][step], bits), nxt)
    if not program.needs:
        return s.zat(zapper, *here), nxt
    # a relaxed program (spec.facts): some runs only where a fact is dropped
    at: list[Expr] = []
    for p in here:
        ok: Expr = s.zat(zapper, p)
        alternatives = program.needs.get((p, step))
        if alternatives is not None:
            dropped = [
                z3.And([z3.Not(s.layout.relaxed[name]) for name in sorted(names)])
                for names in alternatives
            ]
            ok = z3.And(ok, z3.Or(dropped))
        at.append(ok)
    return z3.Or(at), nxt


def zap_lock(s: State, zapper: str) -> Transition:
    """``mutex_lock(&kvm->slots_lock)`` (``zap.serialized``) and ``write_lock(&kvm->mmu_lock)``
    in ``kvm_mmu_zap_all_fast()``: fewer than ``max_zaps`` zaps done, the lock free."""
    layout = s.layout
    at, nxt = _zapper_move(s, zapper, "zap.lock")
    conds = [at, s.lock_free()]
    if layout.zaps_bits is not None:
        bound = layout.config.max_zaps or 0
        conds.append(z3.ULT(s[f"{zapper}.zaps"], s.bv(bound, layout.zaps_bits)))
    conds += [
        fact_guard(layout, "slots_lock.serializes_zaps", z3.Not(s.holds_slots_lock(other)))
        for other in layout.zappers
        if other != zapper
    ]
    return Transition(Step(zapper, "zap.lock"), z3.And(conds), {f"{zapper}.pc": nxt})


def zap_new_gen(s: State, zapper: str) -> Transition:
    """``kvm->arch.mmu_valid_gen = kvm->arch.mmu_valid_gen ? 0 : 1`` and
    ``kvm_tdp_mmu_invalidate_all_roots()``: every loaded root becomes (ghost) obsolete, every
    TDP root ``role.invalid``."""
    layout = s.layout
    at, nxt = _zapper_move(s, zapper, "zap.new_gen")
    updates: dict[str, Expr] = {
        f"{zapper}.pc": nxt,
        "kvm.mmu_valid_gen": gen_next(layout, s["kvm.mmu_valid_gen"]),
    }
    for v in layout.vcpus:
        loaded = s.root(v, "loaded")
        updates[f"{v.actor}.root.obsolete"] = z3.Or(s.root(v, "obsolete"), loaded)
        if v.kind == "tdp":
            updates[f"{v.actor}.root.invalid"] = unless_dropped(
                layout,
                "zap.invalidates_tdp_roots",
                z3.Or(s.root(v, "invalid"), loaded),
                s.root(v, "invalid"),
            )
    return Transition(Step(zapper, "zap.new_gen"), at, updates)


def zap_request(s: State, zapper: str) -> Transition:
    """``kvm_make_all_cpus_request(kvm, KVM_REQ_MMU_RELOAD)`` (``kvm_reload_remote_mmus()``):
    every vCPU's request bit is set and every vCPU in guest mode is kicked out."""
    at, nxt = _zapper_move(s, zapper, "zap.request")
    updates: dict[str, Expr] = {f"{zapper}.pc": nxt}
    for v in s.layout.vcpus:
        updates[f"{v.actor}.request"] = s.const(True)
        kicked = z3.If(s.at(v, PC_GUEST), s.pc_val(PC_OUTSIDE), s.pc(v))
        updates[f"{v.actor}.pc"] = unless_dropped(
            s.layout, "zap.request_kicks_guest", kicked, s.pc(v)
        )
    return Transition(Step(zapper, "zap.request"), at, updates)


def zap_release(s: State, zapper: str, step: str) -> Transition:
    """``zap.unlock_mid`` (what-if: ``write_unlock()`` between the generation change and the
    request) or ``zap.yield`` (``cond_resched_rwlock_write()`` in ``kvm_zap_obsolete_pages()``):
    release ``mmu_lock``."""
    at, nxt = _zapper_move(s, zapper, step)
    return Transition(Step(zapper, step), at, {f"{zapper}.pc": nxt})


def zap_relock(s: State, zapper: str) -> Transition:
    """``write_lock(&kvm->mmu_lock)`` again after ``zap.unlock_mid`` or ``zap.yield``."""
    at, nxt = _zapper_move(s, zapper, "zap.relock")
    return Transition(Step(zapper, "zap.relock"), z3.And(at, s.lock_free()), {f"{zapper}.pc": nxt})


def zap_zap_obsolete(s: State, zapper: str) -> Transition:
    """``kvm_zap_obsolete_pages()`` and ``kvm_mmu_commit_zap_page()``: every loaded root with
    ``is_obsolete_sp()`` loses its SPTE and becomes ``role.invalid`` (in use, ``root_count`` > 0,
    so not freed); with ``zap.respect_root_count: false`` it is freed although a vCPU holds it."""
    layout = s.layout
    at, nxt = _zapper_move(s, zapper, "zap.zap_obsolete")
    updates: dict[str, Expr] = {f"{zapper}.pc": nxt}
    for v in layout.vcpus:
        hit = z3.And(s.root(v, "loaded"), s.is_obsolete_sp(v))
        updates[f"{v.actor}.root.spte"] = z3.And(s.root(v, "spte"), z3.Not(hit))
        updates[f"{v.actor}.root.invalid"] = unless_dropped(
            layout,
            "kvm_zap_obsolete_pages.invalidates_in_use_roots",
            z3.Or(s.root(v, "invalid"), hit),
            s.root(v, "invalid"),
        )
        if not layout.knobs.respect_root_count:
            updates[f"{v.actor}.root.freed"] = z3.Or(s.root(v, "freed"), hit)
        elif fact_literal(layout, "kvm_zap_obsolete_pages.respects_root_count") is not None:
            updates[f"{v.actor}.root.freed"] = unless_dropped(
                layout,
                "kvm_zap_obsolete_pages.respects_root_count",
                s.root(v, "freed"),
                z3.Or(s.root(v, "freed"), hit),
            )
    return Transition(Step(zapper, "zap.zap_obsolete"), at, updates)


def zap_unlock(s: State, zapper: str) -> Transition:
    """``write_unlock(&kvm->mmu_lock)`` and ``mutex_unlock(&kvm->slots_lock)``: one zap done."""
    layout = s.layout
    at, nxt = _zapper_move(s, zapper, "zap.unlock")
    updates: dict[str, Expr] = {f"{zapper}.pc": nxt}
    if layout.zaps_bits is not None:
        updates[f"{zapper}.zaps"] = s[f"{zapper}.zaps"] + 1
    return Transition(Step(zapper, "zap.unlock"), at, updates)


def zapper_transition(s: State, zapper: str, step: str) -> Transition:
    if step == "zap.lock":
        return zap_lock(s, zapper)
    if step == "zap.new_gen":
        return zap_new_gen(s, zapper)
    if step == "zap.request":
        return zap_request(s, zapper)
    if step in ("zap.unlock_mid", "zap.yield"):
        return zap_release(s, zapper, step)
    if step == "zap.relock":
        return zap_relock(s, zapper)
    if step == "zap.zap_obsolete":
        return zap_zap_obsolete(s, zapper)
    if step == "zap.unlock":
        return zap_unlock(s, zapper)
    raise ValueError(f"no zapper step {step!r}")


# --- notifier: kvm_mmu_notifier_invalidate_range_start/end() -------------------------------------


def mn_start(s: State) -> Transition:
    """``kvm_mmu_notifier_invalidate_range_start()``: under ``mmu_lock`` (write),
    ``mmu_notifier_count++``, ``kvm_unmap_gfn_range()`` zaps the gfn's SPTE in every root, and the
    old pfn becomes invalid (every vCPU's pfn read so far is stale)."""
    layout = s.layout
    lock = fact_guard(layout, "mmu_notifier.takes_mmu_lock", s.lock_free())
    conds = [z3.Not(s["notifier.started"]), lock]
    updates: dict[str, Expr] = {"notifier.started": s.const(True)}
    if layout.invalidations_bits is not None:
        bound = layout.config.max_invalidations or 0
        done = s["notifier.invalidations"]
        conds.append(z3.ULT(done, s.bv(bound, layout.invalidations_bits)))
        updates["notifier.invalidations"] = done + 1
    for v in layout.vcpus:
        updates[f"{v.actor}.root.spte"] = s.const(False)
        updates[f"{v.actor}.pfn_stale"] = s.const(True)
    return Transition(Step("notifier", "mn.start"), z3.And(conds), updates)


def mn_end(s: State) -> Transition:
    """``kvm_mmu_notifier_invalidate_range_end()``: under ``mmu_lock`` (write),
    ``mmu_notifier_seq++`` (every fault's snapshot is now outdated), ``mmu_notifier_count--``.
    K6 (``is_page_fault_stale.mmu_seq: int``): the run starts at ``mmu_notifier_seq`` = 2^31 - 1,
    so the sequence is now >= 2^31, for good (``docs/protocol.md`` 6.11)."""
    updates: dict[str, Expr] = {"notifier.started": s.const(False)}
    if has_seq_bit31(s.layout):
        updates[SEQ_BIT31] = s.const(True)
    for v in s.layout.vcpus:
        updates[f"{v.actor}.seq_changed"] = s.const(True)
    lock = fact_guard(s.layout, "mmu_notifier.takes_mmu_lock", s.lock_free())
    return Transition(Step("notifier", "mn.end"), z3.And(s["notifier.started"], lock), updates)


# --- the relation -------------------------------------------------------------------------------


def transition(s: State, step: Step) -> Transition:
    """The transition of one step of the layout (a vCPU's, a zapper's or the notifier's)."""
    v = s.layout.vcpu(step.actor)
    if v is not None:
        return VCPU_BUILDERS[step.name](s, v)
    if step.actor in s.layout.zappers:
        return zapper_transition(s, step.actor, step.name)
    return mn_start(s) if step.name == "mn.start" else mn_end(s)


def transitions(s: State) -> tuple[Transition, ...]:
    """Every transition of the layout from state ``s``, in the order of ``Layout.choices``."""
    result = tuple(transition(s, step) for step in s.layout.choices)
    assert tuple(t.step for t in result) == s.layout.choices
    return result


def make_choice(layout: Layout, suffix: str) -> Expr:
    """The step-choice variable of one depth."""
    return z3.BitVec(f"choice@{suffix}", layout.choice_bits, layout.ctx)


def is_choice(layout: Layout, choice: Expr, code: int) -> Expr:
    return choice == bv_val(layout, code, layout.choice_bits)


def encode(s: State, choice: Expr, t: State, trans: tuple[Transition, ...] | None = None) -> Any:
    """``T(s, choice, t)``: the chosen step is enabled in ``s`` and ``t`` is its result, every
    variable it does not update unchanged (the frame)."""
    layout = s.layout
    trans = transitions(s) if trans is None else trans
    parts: list[Expr] = [z3.ULE(choice, s.bv(len(layout.choices) - 1, layout.choice_bits))]
    selected = [is_choice(layout, choice, k) for k in range(len(trans))]
    for sel, tr in zip(selected, trans, strict=True):
        parts.append(z3.Implies(sel, tr.guard))
    for name in s:
        value = s[name]
        for sel, tr in reversed(list(zip(selected, trans, strict=True))):
            if name in tr.updates:
                value = z3.If(sel, tr.updates[name], value)
        parts.append(t[name] == value)
    return z3.And(parts)


def enabled(s: State, step: Step) -> Expr:
    """Whether ``step`` is enabled in ``s`` (False when the layout has no such step)."""
    code = s.layout.code(step)
    if code is None:
        return s.const(False)
    return transitions(s)[code].guard
