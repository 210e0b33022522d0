"""The transition system: which steps are enabled, what a step does, and what it violates or covers.

``Model`` ties the kernel functions (``kernel.py``) to the step vocabulary for one variant and
configuration. Invariants are those of protocol.md 6.4 and cover targets those of 6.5: a step
invariant is judged on the state before the step and the step, a state invariant on the state
after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from impl.kernel import StepFn, page_fault_staleness, step_functions
from impl.params import Params, make_params
from impl.state import Machine, Notifier, RwLock, Vcpu, Zapper, initial_machine
from kvmmu.vocab import Config, Step, Variant

# the steps a vCPU in the loop may take, in name order (the deterministic exploration order)
_OUTSIDE_STEPS = ("vcpu.check_request", "vcpu.enter", "vcpu.load", "vcpu.unload")
_GUEST_STEPS = ("vcpu.fault",)


@dataclass(frozen=True)
class Outcome:
    """One executed step: the new state, the invariants the step violates, the targets it covers."""

    machine: Machine
    violations: frozenset[str]
    covers: frozenset[str]


@dataclass(frozen=True)
class Model:
    """A variant under a configuration, ready to run."""

    params: Params
    functions: dict[str, StepFn] = field(repr=False)
    # the indices of the vCPUs of each root kind that two or more vCPUs share (see ``symmetric``)
    symmetry_groups: tuple[tuple[int, ...], ...] = ()

    @staticmethod
    def of(variant: Variant, config: Config) -> Model:
        params = make_params(variant, config)
        return Model(params, step_functions(params), symmetry_groups(config.vcpus))

    def canonical(self, m: Machine) -> Machine:
        """``m`` reduced for the search (see ``canonical``)."""
        c = self.params.config
        return canonical(m, c.max_zaps is not None, c.max_invalidations is not None)

    def symmetric(self, m: Machine) -> Machine:
        """The representative of ``m``'s class under permutations of same-kind vCPUs (see
        ``symmetric``); ``m`` itself when no two vCPUs share a root kind."""
        return symmetric(m, self.symmetry_groups) if self.symmetry_groups else m

    def initial(self) -> Machine:
        c = self.params.config
        return initial_machine(len(c.vcpus), c.zappers, c.notifier)

    # --- enabledness and execution -------------------------------------------------------------

    def candidates(self, m: Machine, actor: str) -> tuple[str, ...]:
        """The steps ``actor`` is positioned at, in name order (their guards still apply)."""
        kind, i = self.params.actors[actor]
        if kind == "vcpu":
            v = m.vcpus[i]
            if v.mode == "outside":
                return _OUTSIDE_STEPS
            if v.mode == "guest":
                return _GUEST_STEPS
            return (v.pc,) if v.mode == "fault" else ()
        if kind == "zapper":
            here = self.params.zap_program[m.zappers[i].pc]
            # the yield is optional: zap.zap_obsolete may be taken from its position too
            return ("zap.yield", "zap.zap_obsolete") if here == "zap.yield" else (here,)
        assert m.notifier is not None
        return ("mn.end",) if m.notifier.started else ("mn.start",)

    def run(self, m: Machine, step: Step) -> Machine | None:
        """The state after ``step``, or None when it is not enabled (or names no actor here)."""
        where = self.params.actors.get(step.actor)
        fn = self.functions.get(step.name)
        if where is None or fn is None or not _kind_matches(where[0], step.name):
            return None
        return fn(self.params, m, where[1])

    def successors(self, m: Machine) -> list[tuple[Step, Machine]]:
        """Every enabled step and its result, by actor order of ``Config.actors()``, then name."""
        out: list[tuple[Step, Machine]] = []
        p = self.params
        for actor in p.actor_names:
            i = p.actors[actor][1]
            for name in self.candidates(m, actor):
                after = self.functions[name](p, m, i)
                if after is not None:
                    out.append((Step(actor, name), after))
        return out

    def enabled(self, m: Machine) -> tuple[Step, ...]:
        return tuple(step for step, _ in self.successors(m))

    def execute(self, m: Machine, step: Step) -> Outcome | None:
        """Run ``step`` and judge it; None when it is not enabled."""
        after = self.run(m, step)
        if after is None:
            return None
        violations = self.step_violations(m, step, after) | self.state_violations(after)
        return Outcome(after, violations, self.covers(m, step, after))

    # --- invariants (protocol.md 6.4) and cover targets (6.5) ---------------------------------

    def step_violations(self, before: Machine, step: Step, after: Machine) -> frozenset[str]:
        """The step invariants ``step`` violates (judged on the state before it)."""
        if not step.actor.startswith("vcpu"):
            return frozenset()
        i = self.params.actors[step.actor][1]
        v = before.vcpus[i]
        bad: set[str] = set()
        if step.name == "fault.map":
            assert v.root is not None
            if v.root.obsolete:
                bad.add("no_spte_in_obsolete_root")
            if v.pfn_stale:
                bad.add("no_stale_pfn")
        elif step.name == "fault.check" and after.vcpus[i].mode == "crashed":
            bad.add("no_null_deref")
        return frozenset(bad)

    def state_violations(self, m: Machine) -> frozenset[str]:
        """The state invariants ``m`` violates."""
        bad: set[str] = set()
        if any(v.root is not None and v.root.freed for v in m.vcpus):
            bad.add("no_use_after_free")
        if any(_guest_on_obsolete(v) for v in m.vcpus) and not any(
            self.params.in_window(z.pc) for z in m.zappers
        ):
            bad.add("no_guest_on_obsolete_root")
        return frozenset(bad)

    def covers(self, before: Machine, step: Step, after: Machine) -> frozenset[str]:
        """The cover targets ``step`` reaches."""
        name = step.name
        if name in ("fault.map", "zap.zap_obsolete"):
            return frozenset((name,))
        if not step.actor.startswith("vcpu"):
            return frozenset()
        i = self.params.actors[step.actor][1]
        v = before.vcpus[i]
        if name == "vcpu.enter":
            return frozenset(("enter.after_reload",)) if v.reloaded else frozenset()
        if name == "fault.check_request":
            # the fault ended here: the request said the root is going away
            ended = after.vcpus[i].mode == "outside"
            return frozenset(("retry.obsolete",)) if ended else frozenset()
        if name == "fault.check":
            verdict = page_fault_staleness(self.params, before, v)
            if verdict in ("obsolete_sp", "request"):
                return frozenset(("retry.obsolete",))
            if verdict == "notifier":
                return frozenset(("retry.notifier",))
        return frozenset()


def _kind_matches(kind: str, name: str) -> bool:
    prefix = name.split(".", 1)[0]
    if kind == "vcpu":
        return prefix in ("vcpu", "fault")
    if kind == "zapper":
        return prefix == "zap"
    return prefix == "mn"


def _guest_on_obsolete(v: Vcpu) -> bool:
    return v.mode == "guest" and v.root is not None and v.root.obsolete


def canonical(m: Machine, count_zaps: bool = True, count_invalidations: bool = True) -> Machine:
    """``m`` with the vCPUs' dead fault locals reset, for the exhaustive search.

    A local that no step will read before overwriting it cannot influence any future step,
    invariant or cover target: ``seq_changed`` is read only by ``fault.check`` and written by
    ``fault.snapshot``; ``pfn_stale`` read only by ``fault.map`` (and its invariant) and written
    by ``fault.faultin``; ``stale`` is never read (the vCPU's ``pc`` already says map or unlock).
    Merging states that differ only there shrinks the state space without changing the set of
    traces (only ``Replay`` probes see ``stale``, and replays do not canonicalize).

    Likewise the zaps and invalidations done are read only against their bound: without a bound
    (``count_zaps``/``count_invalidations`` false) they are reset, so that an unbounded
    configuration still has finitely many states (with ``generation: bit``).
    """
    vcpus = tuple(_canonical_vcpu(v) for v in m.vcpus)
    if vcpus != m.vcpus:
        m = m.with_vcpus(vcpus)
    if not count_zaps and any(z.zaps for z in m.zappers):
        m = Machine(m.kvm, m.vcpus, tuple(Zapper(z.pc) for z in m.zappers), m.notifier)
    if not count_invalidations and m.notifier is not None and m.notifier.invalidations:
        m = Machine(m.kvm, m.vcpus, m.zappers, Notifier(m.notifier.started))
    return m


_SEQ_LIVE = frozenset(("fault.faultin", "fault.check_request", "fault.lock", "fault.check"))
_PFN_LIVE = frozenset(("fault.check_request", "fault.lock", "fault.check", "fault.map"))


def _canonical_vcpu(v: Vcpu) -> Vcpu:
    in_fault = v.mode == "fault"
    seq = v.seq_changed and in_fault and v.pc in _SEQ_LIVE
    pfn = v.pfn_stale and in_fault and v.pc in _PFN_LIVE
    if seq == v.seq_changed and pfn == v.pfn_stale and not v.stale:
        return v
    return replace(v, seq_changed=seq, pfn_stale=pfn, stale=False)


# --- symmetry reduction ------------------------------------------------------------------------
# vCPUs of the same root kind are interchangeable: every step function, invariant and cover
# target treats ``vcpuN`` by its record, its root kind (``Config.vcpus[N]``) and the lock it
# holds, never by N itself (the lock names holders, so a permutation renames them too). Two
# states that differ by such a permutation have the same future up to renaming the vCPUs, so
# the same shortest distance to every violation: the search may visit one state per class.


def symmetry_groups(kinds: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
    """The vCPU indices of each root kind that at least two vCPUs have, in index order."""
    by_kind: dict[str, list[int]] = {}
    for i, kind in enumerate(kinds):
        by_kind.setdefault(kind, []).append(i)
    return tuple(tuple(group) for group in by_kind.values() if len(group) > 1)


_RecordKey = tuple[object, ...]
_record_keys: dict[Vcpu, _RecordKey] = {}


def _record_key(v: Vcpu) -> _RecordKey:
    """A total order on vCPU records (memoized: few distinct records recur in a search)."""
    key = _record_keys.get(v)
    if key is None:
        r = v.root
        root = (0,) if r is None else (1, r.has_sp, r.gen, r.obsolete, r.invalid, r.freed, r.spte)
        key = (
            v.mode,
            v.pc,
            v.request,
            v.unload_due,
            root,
            v.lock,
            v.seq_changed,
            v.pfn_stale,
            v.stale,
            v.reloaded,
        )
        if len(_record_keys) < 1 << 16:
            _record_keys[v] = key
    return key


def symmetric(m: Machine, groups: tuple[tuple[int, ...], ...]) -> Machine:
    """``m`` with the vCPUs of each group sorted by record and lock role, and the lock's
    holders renamed to match: the same machine for every permutation of each group's vCPUs.

    Ties leave identical records (lock role included) in place, so the result does not depend
    on the order of ``m``'s vCPUs: it is a canonical representative of ``m``'s class.
    """
    vcpus = m.vcpus
    lock = m.kvm.mmu_lock
    order = list(range(len(vcpus)))
    moved = False
    for group in groups:

        def key(i: int) -> tuple[_RecordKey, bool, bool]:
            name = f"vcpu{i}"
            return _record_key(vcpus[i]), lock.writer == name, name in lock.readers

        ranked = sorted(group, key=key)
        if ranked != list(group):
            moved = True
            for slot, i in zip(group, ranked, strict=True):
                order[slot] = i
    if not moved:
        return m
    new_vcpus = tuple(vcpus[i] for i in order)
    kvm = m.kvm
    if lock.writer is not None or lock.readers:
        rename = {f"vcpu{old}": f"vcpu{new}" for new, old in enumerate(order) if old != new}
        writer = rename.get(lock.writer, lock.writer) if lock.writer is not None else None
        readers = frozenset(rename.get(r, r) for r in lock.readers)
        kvm = kvm.with_lock(RwLock(writer, readers))
    return Machine(kvm, new_vcpus, m.zappers, m.notifier)
