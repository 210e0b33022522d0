"""Auxiliary lemmas for the unbounded proofs, and their proof (Houdini over 1-induction).

A lemma is a named Z3 *state* predicate. The candidates below are the facts the protocol relies
on (``docs/protocol.md`` section 6); several are the state forms of the section 6.4 invariants
(e.g. "a vCPU about to ``fault.map`` has a fresh root"), which makes the invariants themselves
1-inductive once the lemmas are available.

No lemma is ever assumed without proof. :func:`prove_lemmas` keeps the largest subset of the
candidates that is *jointly inductive* for the given variant and configuration (Houdini:
Flanagan and Leino, FME 2001):

* initiation: every kept lemma holds in the initial state;
* consecution: the conjunction of the kept lemmas in ``s`` and one transition ``T(s, c, s')``
  imply each kept lemma in ``s'``.

A candidate that fails either check is dropped and the others are re-checked without it, until
nothing changes. The survivors hold in every reachable state (induction on the path length). A
lemma that is false in some variant (e.g. request coverage under
``stale_check.reload_request: check``, where ``kvm_check_request()`` in the fault path eats the
request) is necessarily dropped there; a dropped lemma is never used for that variant.

For each kept lemma the unsat core of its consecution query names the lemmas it *depends on*;
:meth:`LemmaProof.closure` follows these dependencies, so that a proof can report the (smaller)
set of lemmas it really rests on. Such a dependency-closed subset is inductive on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import z3

from kvmmu.engine import StateValue
from kvmmu.vocab import Step
from spec.decode import decode_state, decode_step
from spec.state import Expr, State
from spec.steps import make_choice
from spec.unroll import SpecSystem, TransitionSystem, Unrolling, make_solver
from spec.variants import (
    PC_CHECK,
    PC_CHECK_REQUEST,
    PC_GUEST,
    PC_LOCK,
    PC_MAP,
    PC_OUTSIDE,
    Layout,
    VcpuInfo,
    ZapperProgram,
)

StatePredicate = Callable[[State], Expr]


@dataclass(frozen=True)
class Lemma:
    """One candidate lemma: ``name`` is ``family`` or ``family[actor]`` (per vCPU instances)."""

    name: str
    family: str
    predicate: StatePredicate = field(compare=False, repr=False)


# What each family says, in words (the report and the docs quote these).
FAMILIES: Mapping[str, str] = MappingProxyType(
    {
        "mmu_lock_exclusive": (
            "mmu_lock has at most one writer, and a writer excludes readers (a vCPU holds it from "
            "fault.lock to fault.unlock, and forever once crashed; a zapper from zap.lock to "
            "zap.unlock except between zap.unlock_mid/zap.yield and zap.relock)"
        ),
        "slots_lock_exclusive": "with zap.serialized, at most one zapper is inside a zap",
        "busy_vcpu_has_root": "a vCPU in guest mode, in the fault path or crashed has a root",
        "busy_vcpu_no_unload_due": (
            "a vCPU in guest mode, in the fault path or crashed has no unload due (unload_due "
            "lives only between vcpu.check_request and vcpu.unload, outside the guest)"
        ),
        "fresh_root_is_current": (
            "a root that is not ghost-obsolete is stamped with the current mmu_valid_gen and is "
            "not role.invalid"
        ),
        "obsolete_root_detectable": (
            "a ghost-obsolete root is obsolete for the kernel's is_obsolete_sp() (invalid, or a "
            "non-TDP root of an old generation): no ABA on the 1-bit generation"
        ),
        "obsolete_root_being_zapped": (
            "a ghost-obsolete root that is not yet role.invalid exists only while some zapper is "
            "between its zap.new_gen and its zap.zap_obsolete"
        ),
        "request_coverage": (
            "a vCPU holding a ghost-obsolete root has the reload request pending, or is between "
            "vcpu.check_request and vcpu.unload (unload_due), or some zapper is in its "
            "generation-to-request window"
        ),
        "kicked_before_new_gen": (
            "(zap.request_before_gen) while a zapper is between zap.request and zap.new_gen, "
            "every vCPU is out of the guest with the request pending or an unload due"
        ),
        "guest_root_fresh": (
            "a vCPU in guest mode on a ghost-obsolete root is possible only inside some zapper's "
            "window (the state form of no_guest_on_obsolete_root)"
        ),
        "map_root_fresh": (
            "a vCPU about to fault.map has a root that is not ghost-obsolete (the state form of "
            "no_spte_in_obsolete_root)"
        ),
        "faultin_pfn_tracked": (
            "from fault.faultin to fault.check, a pfn that is stale is seen by the mmu notifier "
            "check: an invalidation is in progress or the sequence changed since the snapshot"
        ),
        "map_pfn_fresh": (
            "a vCPU about to fault.map has a pfn that was not invalidated (the state form of "
            "no_stale_pfn)"
        ),
        "root_not_freed": "a root a vCPU holds is not freed (the state form of no_use_after_free)",
    }
)


def _any(s: State, items: Sequence[Expr]) -> Expr:
    return z3.Or(list(items)) if items else s.const(False)


def _all(s: State, items: Sequence[Expr]) -> Expr:
    return z3.And(list(items)) if items else s.const(True)


def between(program: ZapperProgram, after: str, until: str) -> frozenset[int]:
    """The zapper positions reached after executing step ``after`` and before executing step
    ``until``, within the same zap (``zap.unlock`` ends a zap). Empty when ``until`` comes first
    in the program (then no position of a zap is after ``after`` and before ``until``)."""
    if not program.positions_of(after) or not program.positions_of(until):
        return frozenset()
    order = [n for n in program.step_names()]
    if order.index(until) < order.index(after):
        return frozenset()
    todo = [program.positions[p][after] for p in program.positions_of(after)]
    seen: set[int] = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for step, nxt in program.positions[p].items():
            if step not in (until, "zap.unlock"):
                todo.append(nxt)
    return frozenset(seen)


def _busy(s: State, v: VcpuInfo) -> Expr:
    """In guest mode, in the fault path, or crashed: anywhere but the ``vcpu_enter_guest()``
    loop."""
    return z3.Not(s.at(v, PC_OUTSIDE))


def _in_window(s: State) -> Expr:
    return _any(s, [s.zapper_in_window(z) for z in s.layout.zappers])


def _zapper_in(s: State, positions: frozenset[int]) -> Expr:
    return _any(s, [s.zat(z, *sorted(positions)) for z in s.layout.zappers])


def mmu_lock_exclusive(s: State) -> Expr:
    """``rwlock_t mmu_lock``: no two holders at once unless both are readers (the holders of
    :meth:`State.mmu_lock_holders`, the parametric environment's included)."""
    holders = s.mmu_lock_holders()
    clauses: list[Expr] = []
    for i, (wi, hi) in enumerate(holders):
        for wj, hj in holders[i + 1 :]:
            if wi or wj:
                clauses.append(z3.Not(z3.And(hi, hj)))
    return _all(s, clauses)


def slots_lock_exclusive(s: State) -> Expr:
    """``mutex slots_lock`` held across ``kvm_mmu_zap_all_fast()``: one zapper at a time."""
    zappers = s.layout.zappers
    clauses = [
        z3.Not(z3.And(s.holds_slots_lock(a), s.holds_slots_lock(b)))
        for i, a in enumerate(zappers)
        for b in zappers[i + 1 :]
    ]
    return _all(s, clauses)


def _per_vcpu(family: str, layout: Layout, fn: Callable[[State, VcpuInfo], Expr]) -> list[Lemma]:
    def bind(v: VcpuInfo) -> StatePredicate:
        return lambda s: fn(s, v)

    return [Lemma(f"{family}[{v.actor}]", family, bind(v)) for v in layout.vcpus]


def busy_vcpu_has_root(s: State, v: VcpuInfo) -> Expr:
    """``vcpu.enter`` needs a root and ``vcpu.unload`` runs only in the loop."""
    return z3.Implies(_busy(s, v), s.root(v, "loaded"))


def busy_vcpu_no_unload_due(s: State, v: VcpuInfo) -> Expr:
    """``vcpu.enter`` needs no unload due; ``vcpu.check_request`` runs only in the loop."""
    return z3.Implies(_busy(s, v), z3.Not(s.flag(v, "unload_due")))


def _ghost_obsolete(s: State, v: VcpuInfo) -> Expr:
    return z3.And(s.root(v, "loaded"), s.root(v, "obsolete"))


def fresh_root_is_current(s: State, v: VcpuInfo) -> Expr:
    """``kvm_mmu_load()`` stamps ``mmu_valid_gen``; only ``zap.new_gen`` changes it, and it makes
    every loaded root ghost-obsolete."""
    fresh = z3.And(s.root(v, "loaded"), z3.Not(s.root(v, "obsolete")))
    current = z3.And(s.root(v, "gen") == s["kvm.mmu_valid_gen"], z3.Not(s.root(v, "invalid")))
    return z3.Implies(fresh, current)


def obsolete_root_detectable(s: State, v: VcpuInfo) -> Expr:
    """``is_obsolete_sp()`` sees every ghost-obsolete root (what ``fault.check`` part 1 and the
    v5.18 ``is_obsolete_root()`` rely on)."""
    return z3.Implies(_ghost_obsolete(s, v), s.is_obsolete_sp(v))


def obsolete_root_being_zapped(s: State, v: VcpuInfo) -> Expr:
    """``kvm_zap_obsolete_pages()`` marks every in-use obsolete root ``role.invalid`` before the
    zapper drops ``slots_lock``, so a second generation flip meets only invalid roots."""
    region = between(s.layout.program, "zap.new_gen", "zap.zap_obsolete")
    pending = z3.And(_ghost_obsolete(s, v), z3.Not(s.root(v, "invalid")))
    return z3.Implies(pending, _zapper_in(s, region))


def request_coverage(s: State, v: VcpuInfo) -> Expr:
    """``kvm_make_all_cpus_request(KVM_REQ_MMU_RELOAD)`` in the same write-locked section as the
    generation flip: outside the window, an obsolete root always has the request (or the unload it
    turned into) pending."""
    covered = z3.Or(s.flag(v, "request"), s.flag(v, "unload_due"), _in_window(s))
    return z3.Implies(_ghost_obsolete(s, v), covered)


def kicked_before_new_gen(s: State, v: VcpuInfo) -> Expr:
    """With ``zap.request_before_gen``: the kick of ``zap.request`` holds until ``zap.new_gen``."""
    region = between(s.layout.program, "zap.request", "zap.new_gen")
    kicked = z3.And(z3.Not(s.at(v, PC_GUEST)), z3.Or(s.flag(v, "request"), s.flag(v, "unload_due")))
    return z3.Implies(_zapper_in(s, region), kicked)


def guest_root_fresh(s: State, v: VcpuInfo) -> Expr:
    """The state form of ``no_guest_on_obsolete_root``."""
    return z3.Implies(z3.And(s.at(v, PC_GUEST), _ghost_obsolete(s, v)), _in_window(s))


def map_root_fresh(s: State, v: VcpuInfo) -> Expr:
    """The state form of ``no_spte_in_obsolete_root``: ``is_page_fault_stale()`` said no, and
    ``mmu_lock`` has been held since."""
    return z3.Implies(s.at(v, PC_MAP), z3.Not(s.root(v, "obsolete")))


def faultin_pfn_tracked(s: State, v: VcpuInfo) -> Expr:
    """``mmu_notifier_retry_hva()``: a pfn read by ``kvm_faultin_pfn()`` during, or invalidated
    after, an invalidation is caught by ``mmu_notifier_count`` or ``mmu_notifier_seq``."""
    between_faultin_and_check = s.at(v, PC_CHECK_REQUEST, PC_LOCK, PC_CHECK)
    seen = z3.Or(s.notifier_count_positive(), s.flag(v, "seq_changed"))
    return z3.Implies(z3.And(between_faultin_and_check, s.flag(v, "pfn_stale")), seen)


def map_pfn_fresh(s: State, v: VcpuInfo) -> Expr:
    """The state form of ``no_stale_pfn``."""
    return z3.Implies(s.at(v, PC_MAP), z3.Not(s.flag(v, "pfn_stale")))


def root_not_freed(s: State, v: VcpuInfo) -> Expr:
    """The state form of ``no_use_after_free``: ``kvm_mmu_free_roots()`` frees a root only at
    ``root_count`` 0, i.e. after the vCPU has let go of it."""
    return z3.Implies(s.root(v, "loaded"), z3.Not(s.root(v, "freed")))


def candidates(layout: Layout) -> tuple[Lemma, ...]:
    """Every candidate lemma for ``layout``, in a fixed order (families that cannot say anything
    in this layout, e.g. slots_lock with one zapper, are left out)."""
    lemmas = [Lemma("mmu_lock_exclusive", "mmu_lock_exclusive", mmu_lock_exclusive)]
    if layout.knobs.serialized and len(layout.zappers) > 1:
        lemmas.append(Lemma("slots_lock_exclusive", "slots_lock_exclusive", slots_lock_exclusive))
    per_vcpu: list[tuple[str, Callable[[State, VcpuInfo], Expr]]] = [
        ("busy_vcpu_has_root", busy_vcpu_has_root),
        ("busy_vcpu_no_unload_due", busy_vcpu_no_unload_due),
        ("fresh_root_is_current", fresh_root_is_current),
        ("obsolete_root_detectable", obsolete_root_detectable),
        ("obsolete_root_being_zapped", obsolete_root_being_zapped),
        ("request_coverage", request_coverage),
    ]
    if between(layout.program, "zap.request", "zap.new_gen"):
        per_vcpu.append(("kicked_before_new_gen", kicked_before_new_gen))
    per_vcpu += [
        ("guest_root_fresh", guest_root_fresh),
        ("map_root_fresh", map_root_fresh),
        ("faultin_pfn_tracked", faultin_pfn_tracked),
        ("map_pfn_fresh", map_pfn_fresh),
        ("root_not_freed", root_not_freed),
    ]
    if not layout.zappers:
        per_vcpu = [(f, fn) for f, fn in per_vcpu if f != "kicked_before_new_gen"]
    for family, fn in per_vcpu:
        lemmas += _per_vcpu(family, layout, fn)
    assert all(lemma.family in FAMILIES for lemma in lemmas)
    return tuple(lemmas)


# --- the proof ----------------------------------------------------------------------------------

LemmaStatus = Literal["proved", "false", "dropped", "unknown"]


@dataclass(frozen=True)
class LemmaProof:
    """The outcome of :func:`prove_lemmas`.

    ``status``: per candidate, ``proved`` (kept by Houdini), ``false`` (a reachable state violates
    it: ``counterexamples`` has the trace, only when classification was asked), ``dropped`` (not
    inductive together with the others, or not shown false within the bound), or ``unknown``
    (the solver gave up: nothing is proved then). ``depends``: per proved lemma, the proved lemmas
    its consecution needed (an unsat core). ``reason``: why some status is not ``proved``.
    """

    lemmas: tuple[Lemma, ...]
    status: Mapping[str, LemmaStatus]
    depends: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    reason: Mapping[str, str] = field(default_factory=dict)
    counterexamples: Mapping[str, tuple[Step, ...]] = field(default_factory=dict)
    counterexample_states: Mapping[str, tuple[Mapping[str, StateValue], ...]] = field(
        default_factory=dict
    )
    seconds: float = 0.0

    @property
    def proved(self) -> tuple[Lemma, ...]:
        return tuple(lemma for lemma in self.lemmas if self.status[lemma.name] == "proved")

    def closure(self, names: Iterable[str]) -> tuple[str, ...]:
        """``names`` and every proved lemma they depend on, transitively, in candidate order."""
        todo = list(names)
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo += self.depends.get(name, ())
        return tuple(lemma.name for lemma in self.lemmas if lemma.name in seen)


def _timed_out(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _set_timeout(solver: z3.Solver, deadline: float | None) -> None:
    if deadline is not None:
        left = deadline - time.monotonic()
        solver.set("timeout", max(1, int(left * 1000)))


def prove_lemmas(
    layout: Layout,
    lemmas: Sequence[Lemma] | None = None,
    deadline: float | None = None,
    classify_depth: int = 0,
    *,
    system: TransitionSystem | None = None,
) -> LemmaProof:
    """Houdini: keep the largest jointly inductive subset of ``lemmas`` (default: every
    :func:`candidates` lemma) for ``layout``. ``deadline`` is a ``time.monotonic()`` instant; if
    it passes (or Z3 answers unknown), every lemma not yet settled is ``unknown`` and none is
    proved. With ``classify_depth > 0`` each dropped lemma is also searched for a reachable
    violation within that many steps (then ``false``, with the trace; the spec only).
    ``system``: the transition system whose states the lemmas are about (default the spec of
    ``layout``; the parametric abstraction passes itself)."""
    start = time.monotonic()
    model_of = SpecSystem(layout) if system is None else system
    if classify_depth > 0 and system is not None:
        raise ValueError("classify_depth searches the spec's own unrolling: no other system")
    pool = tuple(candidates(layout) if lemmas is None else lemmas)
    status: dict[str, LemmaStatus] = {}
    reason: dict[str, str] = {}

    def give_up(why: str) -> LemmaProof:
        for lemma in pool:
            if lemma.name not in status or status[lemma.name] == "proved":
                status[lemma.name] = "unknown"
                reason[lemma.name] = why
        return LemmaProof(pool, status, reason=reason, seconds=time.monotonic() - start)

    ctx = layout.ctx
    # initiation: I(s) implies the lemma
    init_solver = make_solver(ctx)
    s0 = model_of.state("h0")
    init_solver.add(model_of.initial(s0))
    alive: list[Lemma] = []
    for lemma in pool:
        if _timed_out(deadline):
            return give_up("timeout")
        _set_timeout(init_solver, deadline)
        answer = init_solver.check(z3.Not(lemma.predicate(s0)))
        if answer == z3.sat:
            status[lemma.name] = "dropped"
            reason[lemma.name] = "false in the initial state"
        elif answer == z3.unsat:
            alive.append(lemma)
        else:
            return give_up(str(init_solver.reason_unknown()))
    # consecution: L(s) & T(s, c, t) implies L(t), for the conjunction of the survivors
    solver = make_solver(ctx)
    s, t = model_of.state("h0"), model_of.state("h1")
    solver.add(model_of.relation(s, make_choice(layout, "h0"), t))
    lits: dict[str, Expr] = {}
    for i, lemma in enumerate(pool):
        lits[lemma.name] = z3.Bool(f"lemma!{i}", ctx)
        solver.add(z3.Implies(lits[lemma.name], lemma.predicate(s)))
    after = {lemma.name: lemma.predicate(t) for lemma in pool}
    queries = 0
    while alive:
        if _timed_out(deadline):
            return give_up("timeout")
        queries += 1
        query = z3.Bool(f"houdini!{queries}", ctx)
        solver.add(z3.Implies(query, z3.Or([z3.Not(after[x.name]) for x in alive])))
        _set_timeout(solver, deadline)
        answer = solver.check(query, *[lits[x.name] for x in alive])
        if answer == z3.unsat:
            break
        if answer != z3.sat:
            return give_up(str(solver.reason_unknown()))
        model = solver.model()
        failed = [x for x in alive if z3.is_false(model.eval(after[x.name], True))]
        assert failed, "a model of the disjunction falsifies some lemma"
        for x in failed:
            status[x.name] = "dropped"
            reason[x.name] = "not inductive relative to the other candidates"
        alive = [x for x in alive if x not in failed]
    # dependencies: which kept lemmas each one's consecution needs
    depends: dict[str, tuple[str, ...]] = {}
    by_lit = {str(lits[x.name]): x.name for x in alive}
    for x in alive:
        if _timed_out(deadline):
            return give_up("timeout")
        queries += 1
        query = z3.Bool(f"houdini!{queries}", ctx)
        solver.add(z3.Implies(query, z3.Not(after[x.name])))
        _set_timeout(solver, deadline)
        answer = solver.check(query, *[lits[y.name] for y in alive])
        if answer != z3.unsat:  # pragma: no cover - it was unsat for the disjunction
            return give_up(str(solver.reason_unknown()))
        core = {str(e) for e in solver.unsat_core()}
        depends[x.name] = tuple(by_lit[c] for c in sorted(core) if c in by_lit)
        status[x.name] = "proved"
    counterexamples: dict[str, tuple[Step, ...]] = {}
    cex_states: dict[str, tuple[Mapping[str, StateValue], ...]] = {}
    if classify_depth > 0:
        dropped = [x for x in pool if status[x.name] == "dropped"]
        found = refute(layout, dropped, classify_depth, deadline)
        for name, (trace, states) in found.items():
            status[name] = "false"
            reason[name] = f"violated by a reachable state after {len(trace)} steps"
            counterexamples[name] = trace
            cex_states[name] = states
    return LemmaProof(
        pool,
        status,
        depends,
        reason,
        counterexamples,
        cex_states,
        seconds=time.monotonic() - start,
    )


def refute(
    layout: Layout, lemmas: Sequence[Lemma], depth: int, deadline: float | None = None
) -> dict[str, tuple[tuple[Step, ...], tuple[Mapping[str, StateValue], ...]]]:
    """Bounded search for reachable states violating ``lemmas``: per lemma violated within
    ``depth`` steps, a shortest trace and its states."""
    u = Unrolling(layout)
    found: dict[str, tuple[tuple[Step, ...], tuple[Mapping[str, StateValue], ...]]] = {}
    open_lemmas = list(lemmas)
    for i in range(0, depth + 1):
        if i > 0:
            u.extend()
        while open_lemmas and not _timed_out(deadline):
            bad = {x.name: z3.Not(x.predicate(u.states[i])) for x in open_lemmas}
            lit = u.literal(z3.Or(list(bad.values())))
            _set_timeout(u.solver, deadline)
            if u.solver.check(lit) != z3.sat:
                break
            model = u.solver.model()
            trace = tuple(decode_step(layout, model, c) for c in u.choices[:i])
            states = tuple(decode_state(model, st) for st in u.states[: i + 1])
            for x in list(open_lemmas):
                if z3.is_true(model.eval(bad[x.name], True)):
                    found[x.name] = (trace, states)
                    open_lemmas.remove(x)
        if not open_lemmas or _timed_out(deadline):
            break
    return found
