"""One-step queries on the transition relation, for the step-by-step refinement check.

Given a state *described by paths* (``docs/protocol.md`` section 6.7 plus the control paths of
``kvmmu.vocab.refinement_paths``), a step, and a described state after it, :class:`SpecStep`
asks Z3 whether ``T(s0, step, s1)`` holds for some symbolic states ``s0``, ``s1`` that read those
values. Each path is the *inverse* of ``decode.py``: a constraint "this spec variable decodes to
this value". Variables that no path determines (a root's fields while none is loaded, the stale
verdict outside ``fault.check`` .. ``fault.unlock``, the reason of a stale verdict, a zap count
without a bound) stay free: existential, which is what refinement asks (some spec state that the
abstraction maps to the impl state steps to one that maps to the impl's next state). No such
variable is read by a step before a step writes it, so nothing is lost in practice.

The relation is asserted once per (variant, configuration) in one solver; each query pushes the
path constraints and pops them, so a query costs one or two small incremental checks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import z3

from kvmmu.engine import StateValue
from kvmmu.vocab import COVER_TARGETS, INVARIANTS, Config, Step, Variant
from spec.invariants import BAD, COVER
from spec.state import Expr, State, initial, make_state
from spec.steps import encode, is_choice, make_choice, transitions
from spec.unroll import make_solver
from spec.variants import (
    FAULT_STEP_PC,
    PC_CRASHED,
    PC_GUEST,
    PC_MAP,
    PC_OUTSIDE,
    PC_UNLOCK,
    STALE_NO,
    Layout,
    VcpuInfo,
    make_layout,
)

_MODE_PC = {"outside": PC_OUTSIDE, "guest": PC_GUEST, "crashed": PC_CRASHED}
_FAULT_PCS = tuple(sorted(set(FAULT_STEP_PC.values())))
_VCPU_FLAG_PATHS = {
    "request": "request",
    "unload_due": "unload_due",
    "reloaded": "reloaded",
    "fault.seq_changed": "seq_changed",
    "fault.pfn_stale": "pfn_stale",
}


@dataclass(frozen=True)
class StepVerdict:
    """The spec's answer on one step.

    ``accepted``: some spec states reading the given values are related by the step.
    ``violations`` / ``covers``: the invariants the step violates and the targets it covers in
    one such transition (sections 6.4, 6.5): one that agrees with the verdicts asked about, if
    any does (``agrees``). ``determined``: every accepted transition gives the same invariant
    verdicts (they are a function of the paths). ``reason``: why not accepted, for a report.
    """

    accepted: bool
    violations: frozenset[str] = frozenset()
    covers: frozenset[str] = frozenset()
    agrees: bool = False
    determined: bool = False
    reason: str = ""


class SpecStep:
    """The transition relation of one variant and configuration, ready for one-step queries.

    ``horizon`` sizes the generation counter when ``generation: counter`` and ``max_zaps`` is
    null (as in ``make_layout``): pass at least the number of steps of the runs to check.

    Speed: the relation is asserted once, and every "path reads value" constraint, step choice,
    guard and verdict gets an *assumption literal* the first time it is needed (``lit -> it``,
    asserted once); a query is then one ``check(literals)`` with no new terms, so Z3 keeps what
    it learned across queries. Building z3 terms in Python costs far more than solving them.
    """

    def __init__(self, variant: Variant, config: Config, horizon: int = 64) -> None:
        self.layout: Layout = make_layout(variant, config, horizon)
        self.s0 = make_state(self.layout, "pre")
        self.s1 = make_state(self.layout, "post")
        self.choice = make_choice(self.layout, "step")
        self.solver = make_solver(self.layout.ctx)
        trans = transitions(self.s0)
        self.solver.add(encode(self.s0, self.choice, self.s1, trans))
        self._guards = {t.step: t.guard for t in trans}
        c, s0, s1 = self.choice, self.s0, self.s1
        self._bad = {name: BAD[name](s0, c, s1) for name in INVARIANTS}
        self._cover = {name: COVER[name](s0, c, s1) for name in COVER_TARGETS}
        self._literals: dict[tuple[object, ...], Expr] = {}

    # --- assumption literals ------------------------------------------------------------------

    def _literal(self, key: tuple[object, ...], formula: Callable[[], Expr]) -> Expr:
        """The literal for ``key``, implying ``formula()`` (built and asserted on first use)."""
        lit = self._literals.get(key)
        if lit is None:
            lit = z3.Bool(f"lit!{len(self._literals)}", self.layout.ctx)
            self.solver.add(z3.Implies(lit, formula()))
            self._literals[key] = lit
        return lit

    def _reads(self, which: int, values: Mapping[str, StateValue]) -> list[Expr]:
        """Literals for "state ``which`` (0 before, 1 after) reads ``values``"."""
        s = self.s0 if which == 0 else self.s1
        # the value's type is part of the key: True == 1 in Python, not in a state path
        return [
            self._literal(
                ("path", which, path, type(value), value),
                functools.partial(constraint, s, path, value),
            )
            for path, value in values.items()
        ]

    def _chose(self, code: int) -> Expr:
        return self._literal(("choice", code), lambda: is_choice(self.layout, self.choice, code))

    def _guard(self, step: Step) -> Expr:
        return self._literal(("guard", step), lambda: self._guards[step])

    def _verdict(self, kind: str, name: str, value: bool) -> Expr:
        pred = (self._bad if kind == "bad" else self._cover)[name]
        return self._literal((kind, name, value), lambda: pred if value else z3.Not(pred))

    def _any(self, key: tuple[object, ...], literals: Sequence[Expr]) -> Expr:
        """A literal for "one of ``literals``" (``key`` names the set)."""
        return self._literal(("any", *key), lambda: z3.Or(list(literals)))

    def _check(self, *assumptions: Expr) -> Any:
        """``solver.check(*assumptions)`` through the C API: the Python wrapper re-checks the
        sort of every assumption on every call, which costs more than the check itself."""
        arr = (z3.Ast * len(assumptions))(*(a.as_ast() for a in assumptions))
        ctx = self.layout.ctx.ref()
        r = z3.Z3_solver_check_assumptions(ctx, self.solver.solver, len(assumptions), arr)
        answer = z3.CheckSatResult(r)
        if answer == z3.unknown:  # pragma: no cover - the formulas are tiny
            raise RuntimeError(f"z3 answered unknown ({self.solver.reason_unknown()})")
        return answer

    # --- the queries ------------------------------------------------------------------------

    def has_step(self, step: Step) -> bool:
        """Whether the variant and configuration have ``step`` at all (section 6.8)."""
        return self.layout.code(step) is not None

    def step(
        self,
        pre: Mapping[str, StateValue],
        step: Step,
        post: Mapping[str, StateValue],
        violations: frozenset[str] = frozenset(),
        covers: frozenset[str] = frozenset(),
    ) -> StepVerdict:
        """Is ``pre --step--> post`` a transition of the spec, and can it have the invariant
        verdicts ``violations`` and the covers ``covers`` (another engine's), and must it?

        Covers are only asked to be *possible*: the spec's ``fault.check`` that crashes keeps the
        vCPU's previous stale verdict, which the cover ``retry.obsolete`` reads and no path
        determines (in reachable spec states it is always "not stale" there)."""
        code = self.layout.code(step)
        if code is None:
            return StepVerdict(False, reason=f"the spec has no step {step}")
        base = [self._chose(code), *self._reads(0, pre), *self._reads(1, post)]
        same_bad = [self._verdict("bad", n, n in violations) for n in INVARIANTS]
        same_cover = [self._verdict("cover", n, n in covers) for n in COVER_TARGETS]
        agrees = self._check(*base, *same_bad, *same_cover) == z3.sat
        if not agrees and self._check(*base) != z3.sat:
            return StepVerdict(False, reason=self._why_not(pre, step))
        if agrees:
            spec_bad, spec_cover = violations, covers
        else:
            model = self.solver.model()
            spec_bad = _true_names(model, self._bad)
            spec_cover = _true_names(model, self._cover)
        # the invariant verdicts must be a function of the paths: no accepted transition may
        # give other ones
        other_bad = [self._verdict("bad", n, n not in violations) for n in INVARIANTS]
        other = self._any(("bad", violations), other_bad)
        determined = agrees and self._check(*base, other) == z3.unsat
        return StepVerdict(True, spec_bad, spec_cover, agrees, determined)

    def is_initial(self, state: Mapping[str, StateValue]) -> bool:
        """Whether some initial state of the spec reads ``state``."""
        init = self._literal(("initial",), lambda: initial(self.s0))
        return bool(self._check(init, *self._reads(0, state)) == z3.sat)

    def enabled_among(self, pre: Mapping[str, StateValue], steps: Iterable[Step]) -> list[Step]:
        """Those of ``steps`` whose guard some spec state reading ``pre`` satisfies (one check
        when none is, the expected answer for steps another engine says are disabled)."""
        remaining = {s: self._guard(s) for s in steps if s in self._guards}
        reads = self._reads(0, pre)
        found: list[Step] = []
        while remaining:
            some = self._any(("guard", frozenset(remaining)), list(remaining.values()))
            if self._check(*reads, some) != z3.sat:
                break
            model = self.solver.model()
            hit = [s for s, g in remaining.items() if z3.is_true(model.eval(g, True))]
            found += hit
            for s in hit:
                del remaining[s]
        return sorted(found)

    def all_enabled(self, pre: Mapping[str, StateValue], steps: Iterable[Step]) -> list[Step]:
        """Those of ``steps`` that are *not* enabled in the spec state reading ``pre`` (one
        check when all are, the expected answer for steps another engine says are enabled)."""
        wanted = list(steps)
        missing = [s for s in wanted if s not in self._guards]
        present = [s for s in wanted if s in self._guards]
        reads = self._reads(0, pre)
        if self._check(*reads, *(self._guard(s) for s in present)) == z3.sat:
            return sorted(missing)
        # name the culprits, one check each
        return sorted(
            missing + [s for s in present if self._check(*reads, self._guard(s)) != z3.sat]
        )

    def _why_not(self, pre: Mapping[str, StateValue], step: Step) -> str:
        """A short reason for a rejected step: the pre-state is no spec state, the guard fails
        there, or the post-state differs from the step's effect on the paths."""
        reads = self._reads(0, pre)
        if self._check(*reads) != z3.sat:
            return "the state before the step is no state of the spec (its paths contradict)"
        if self._check(*reads, self._guard(step)) != z3.sat:
            return f"the spec's guard of {step} does not hold before the step"
        return f"the spec's effect of {step} differs after the step"

    def successor_paths(
        self, pre: Mapping[str, StateValue], step: Step, paths: Iterable[str]
    ) -> dict[str, StateValue] | None:
        """The values the spec gives ``paths`` after ``step`` from ``pre`` (one completion),
        or None when the step is not enabled there: used to name the paths that disagree."""
        code = self.layout.code(step)
        if code is None or self._check(self._chose(code), *self._reads(0, pre)) != z3.sat:
            return None
        model = self.solver.model()
        return {path: read(model, self.s1, path) for path in paths}


def _true_names(model: z3.ModelRef, preds: Mapping[str, Expr]) -> frozenset[str]:
    return frozenset(n for n, p in preds.items() if z3.is_true(model.eval(p, True)))


# --- paths -> constraints (the inverse of decode.py) -------------------------------------------


def describe(s: State, values: Mapping[str, StateValue]) -> Expr:
    """The constraint "``s`` reads ``values``" (a conjunction, one part per path)."""
    parts = [constraint(s, path, value) for path, value in values.items()]
    return z3.And(parts) if parts else s.const(True)


def _int_var(s: State, var: Expr, value: StateValue) -> Expr:
    """``var`` (a bit-vector) equals the whole number ``value``; False when it cannot (a value
    out of the variable's range is no spec state, rather than one that wraps around)."""
    bits = var.size()
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        return s.const(False)
    return var == s.bv(value, bits)


def _gen(s: State, var: Expr, value: StateValue) -> Expr:
    """A generation (Bool for ``generation: bit``, else a counter) equals ``value``."""
    if z3.is_bool(var):
        return var == s.const(value == 1) if value in (0, 1) else s.const(False)
    return _int_var(s, var, value)


def _flag(s: State, var: Expr, value: StateValue) -> Expr:
    return var == s.const(value) if isinstance(value, bool) else s.const(False)


def _equiv(s: State, predicate: Expr, value: bool) -> Expr:
    return predicate if value else z3.Not(predicate)


def constraint(s: State, path: str, value: StateValue) -> Expr:
    """The constraint "path ``path`` of ``s`` reads ``value``"; ValueError for a path that is
    not a state or control path (``kvmmu.vocab.refinement_paths``)."""
    layout = s.layout
    head, _, rest = path.partition(".")
    if head == "kvm":
        return _kvm(s, rest, value)
    v = layout.vcpu(head)
    if v is not None:
        return _vcpu(s, v, rest, value)
    if head in layout.zappers:
        return _zapper(s, head, rest, value)
    if head == "notifier" and layout.notifier:
        return _notifier(s, rest, value)
    if head.startswith(("vcpu", "zapper", "notifier")):
        # an actor the configuration lacks: its paths read null (section 6.7)
        return s.const(value is None)
    raise ValueError(f"unknown state path {path!r}")


def _kvm(s: State, name: str, value: StateValue) -> Expr:
    layout = s.layout
    if name == "mmu_valid_gen":
        return _gen(s, s["kvm.mmu_valid_gen"], value)
    if name == "mmu_notifier_count":
        # the spec's count is "started" (one notifier, mn.start needs it idle): 0 or 1
        return (
            _equiv(s, s.notifier_count_positive(), value == 1)
            if value in (0, 1)
            else s.const(False)
        )
    if name == "mmu_lock":
        writer, readers = s.has_writer(), s.has_readers()
        if value == "write":
            return writer
        if value == "read":
            return z3.And(z3.Not(writer), readers)
        if value == "free":
            return z3.And(z3.Not(writer), z3.Not(readers))
        return s.const(False)
    if name == "mmu_lock.holders":
        names = set(str(value).split(",")) if value is not None else set()
        holders = {v.actor: s.holds_mmu_lock(v) for v in layout.vcpus}
        holders |= {z: s.zapper_holds_mmu_lock(z) for z in layout.zappers}
        if not names <= set(holders):
            return s.const(False)
        return z3.And([_equiv(s, held, actor in names) for actor, held in holders.items()])
    if name == "mmu_notifier_seq.bit31":
        if not isinstance(value, bool):
            return s.const(False)
        return _equiv(s, s.seq_bit31(), value)
    if name == "slots_lock":
        if value is not None and value not in layout.zappers:
            return s.const(False)
        parts = [_equiv(s, s.holds_slots_lock(z), z == value) for z in layout.zappers]
        return z3.And(parts) if parts else s.const(True)
    raise ValueError(f"unknown state path 'kvm.{name}'")


def _vcpu(s: State, v: VcpuInfo, name: str, value: StateValue) -> Expr:
    pc = s.pc(v)
    if name == "mode":
        if value == "fault":
            return s.at(v, *_FAULT_PCS)
        if isinstance(value, str) and value in _MODE_PC:
            return pc == s.pc_val(_MODE_PC[value])
        return s.const(False)
    if name == "pc":
        if value is None:
            return z3.Not(s.at(v, *_FAULT_PCS))
        if isinstance(value, str) and value in FAULT_STEP_PC:
            return pc == s.pc_val(FAULT_STEP_PC[value])
        return s.const(False)
    if name in _VCPU_FLAG_PATHS:
        return _flag(s, s.flag(v, _VCPU_FLAG_PATHS[name]), value)
    if name == "root.loaded":
        return _flag(s, s.root(v, "loaded"), value)
    if name.startswith("root."):
        field = name[len("root.") :]
        if field not in ("gen", "obsolete", "invalid", "freed", "spte"):
            raise ValueError(f"unknown state path '{v.actor}.{name}'")
        loaded = s.root(v, "loaded")
        if value is None:
            return z3.Not(loaded)  # decode.py: root fields read null exactly without a root
        var = s.root(v, field)
        same = _gen(s, var, value) if field == "gen" else _flag(s, var, value)
        return z3.And(loaded, same)
    if name == "fault.stale":
        checked = s.at(v, PC_MAP, PC_UNLOCK)
        if value is None:
            return z3.Not(checked)
        if not isinstance(value, bool):
            return s.const(False)
        stale = s.flag(v, "stale") != s.stale_val(STALE_NO)
        return z3.And(checked, _equiv(s, stale, value))
    if name == "fault.lock":
        held = s.holds_mmu_lock(v)
        if value == "none":
            return z3.Not(held)
        if value in ("read", "write"):
            # the mode is static per vCPU (its root kind and fault_lock)
            return z3.And(held, s.const(value == v.lock_mode))
        return s.const(False)
    raise ValueError(f"unknown state path '{v.actor}.{name}'")


def zapper_position_name(layout: Layout, position: int) -> str:
    """The name of a zapper program position: its step (at the optional yield, ``zap.yield``,
    which ``zapper_program`` lists first)."""
    if not 0 <= position < len(layout.program.positions):
        return "?"  # a bit pattern no reachable state has
    return next(iter(layout.program.positions[position]))


def _zapper(s: State, zapper: str, name: str, value: StateValue) -> Expr:
    layout = s.layout
    if name == "pc":
        # a name may denote several positions (``zap.relock`` after ``zap.unlock_mid`` and
        # after ``zap.yield`` when both knobs are on): any of them
        here = [
            p
            for p in range(len(layout.program.positions))
            if zapper_position_name(layout, p) == value
        ]
        return s.zat(zapper, *here)
    if name == "position":
        # the spec's program positions are the section 6.3 list's indices (``zapper_program``
        # numbers them in that order, the yield's alternative at the ``zap.yield`` position)
        if not isinstance(value, int) or isinstance(value, bool):
            return s.const(False)
        if not 0 <= value < len(layout.program.positions):
            return s.const(False)
        return s.zat(zapper, value)
    if name == "zaps":
        if layout.zaps_bits is None:
            return s.const(True)  # unbounded zaps: the spec does not count them
        return _int_var(s, s[f"{zapper}.zaps"], value)
    raise ValueError(f"unknown state path '{zapper}.{name}'")


def _notifier(s: State, name: str, value: StateValue) -> Expr:
    if name == "state":
        if value not in ("idle", "started"):
            return s.const(False)
        return _equiv(s, s["notifier.started"], value == "started")
    if name == "invalidations":
        if s.layout.invalidations_bits is None:
            return s.const(True)  # unbounded: the spec does not count them
        return _int_var(s, s["notifier.invalidations"], value)
    raise ValueError(f"unknown state path 'notifier.{name}'")


# --- reading paths back (for reports: which path disagrees) ------------------------------------


def read(model: z3.ModelRef, s: State, path: str) -> StateValue:
    """The value of ``path`` in ``s`` under ``model``, in the vocabulary of ``constraint``."""
    layout = s.layout

    def val(e: Expr) -> int | bool:
        r = model.eval(e, model_completion=True)
        return bool(z3.is_true(r)) if z3.is_bool(r) else int(r.as_long())

    head, _, name = path.partition(".")
    if head == "kvm":
        if name == "mmu_valid_gen":
            return int(val(s["kvm.mmu_valid_gen"]))
        if name == "mmu_notifier_count":
            return int(val(s.notifier_count_positive()))
        if name == "mmu_lock":
            return "write" if val(s.has_writer()) else "read" if val(s.has_readers()) else "free"
        if name == "mmu_lock.holders":
            held = [v.actor for v in layout.vcpus if val(s.holds_mmu_lock(v))]
            held += [z for z in layout.zappers if val(s.zapper_holds_mmu_lock(z))]
            return ",".join(sorted(held)) or None
        if name == "slots_lock":
            return next((z for z in layout.zappers if val(s.holds_slots_lock(z))), None)
        if name == "mmu_notifier_seq.bit31":
            return bool(val(s.seq_bit31()))
    v = layout.vcpu(head)
    if v is not None:
        pc = int(val(s.pc(v)))
        in_fault = pc in _FAULT_PCS
        if name == "mode":
            return "fault" if in_fault else {p: m for m, p in _MODE_PC.items()}.get(pc, "?")
        if name == "pc":
            return next((n for n, p in FAULT_STEP_PC.items() if p == pc), None)
        if name in _VCPU_FLAG_PATHS:
            return bool(val(s.flag(v, _VCPU_FLAG_PATHS[name])))
        loaded = bool(val(s.root(v, "loaded")))
        if name == "root.loaded":
            return loaded
        if name.startswith("root."):
            field = name[len("root.") :]
            return (int if field == "gen" else bool)(val(s.root(v, field))) if loaded else None
        if name == "fault.stale":
            stale = int(val(s.flag(v, "stale"))) != STALE_NO
            return stale if pc in (PC_MAP, PC_UNLOCK) else None
        if name == "fault.lock":
            return v.lock_mode if val(s.holds_mmu_lock(v)) else "none"
    if head in layout.zappers:
        if name == "pc":
            return zapper_position_name(layout, int(val(s.zpc(head))))
        if name == "position":
            return int(val(s.zpc(head)))
        if name == "zaps" and layout.zaps_bits is not None:
            return int(val(s[f"{head}.zaps"]))
    if head == "notifier" and layout.notifier:
        if name == "state":
            return "started" if val(s["notifier.started"]) else "idle"
        if name == "invalidations" and layout.invalidations_bits is not None:
            return int(val(s["notifier.invalidations"]))
    return None
