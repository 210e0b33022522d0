"""Liveness in the spec (``docs/protocol.md`` §6.11): lasso-shaped BMC and a k-liveness proof.

**Lasso BMC** (:func:`lasso_bmc`). For ``k = 1, 2, ...`` the unrolling ``s_0 .. s_k`` is asked for
a loop start ``l < k`` with ``s_k = s_l`` (every variable of the frame, ``State.vars``, ghosts
included), the property's violation on the loop ``c_l .. c_{k-1}`` and, unless fairness is off,
weak fairness on the loop: each actor steps in the loop or is not runnable at one of
``s_l .. s_{k-1}``. The loop start is a one-hot choice of Booleans, fresh for each ``k`` under
an assumption literal; the first ``k`` with an answer is the shortest lasso (prefix plus loop).

**k-liveness** (:func:`prove_liveness`; Claessen and Sörensson, FMCAD 2012), per vCPU ``v``. The
system is extended by a one-way ``committed`` flag, set nondeterministically, and a saturating
counter of ``v``'s ``vcpu.fault`` steps taken after the commit. From a committed state only the
steps a violating loop may take are enabled (``fault_progress``: no environment step, no
``v fault.map``; ``no_retry_livelock``: only ``v``'s steps, no map). With fairness the commit is
allowed only in a state where no zapper and not the notifier is runnable: a fair violating loop
has no environment step, so the environment's state is constant on it, and fairness then needs
it not runnable there; committing at the loop's start is therefore always possible, and the
counter would grow without bound along the repeated loop (a retrying loop faults, as every
retry ends a fault). So "the counter stays ``<= K``" being an invariant refutes every violating
run. It is proved by Houdini (1-induction, as ``spec.lemmas``) over the extended system, with
the lemmas of ``spec.lemmas`` that are proved for the base system assumed (a reachable state of
the extended system is a reachable state of the base one, as the extension only removes steps)
and these candidates, each kept only if it is inductive:

* ``count_after_commit``: the counter is 0 before the commit;
* ``committed_env_done``: a committed state has the environment finished (with fairness);
* ``guest_no_request[w]``: a vCPU in guest mode has no reload request pending (``zap.request``
  kicks guests out, ``vcpu.enter`` needs no request);
* ``fault_progresses[v]``: after the commit, once ``v`` has faulted, its root is *ready* (loaded,
  no request, no unload due, and ``is_page_fault_stale()`` would not call it obsolete) and ``v``
  is in that fault before ``fault.map`` with no notifier change since its snapshot, so its check
  will pass;
* ``bound[v]``: the counter is at most ``K``.

``proved`` means Houdini kept ``bound`` (Z3 answered unsat on its consecution) and a committed
state in which ``v`` is in guest mode (its next step may be ``vcpu.fault``) is reachable within
the cover depth; otherwise the proof is ``vacuous``. Why k-liveness and not liveness-to-safety:
``docs/protocol.md`` §6.11.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import z3

from kvmmu.vocab import LIVENESS_PROPERTIES, Config, Step, Variant
from spec.decode import decode_step
from spec.lemmas import prove_lemmas
from spec.state import Expr, State, initial, make_state
from spec.steps import encode, is_choice, make_choice, transition
from spec.unroll import Unrolling, make_solver
from spec.variants import (
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
    Layout,
    VcpuInfo,
    make_layout,
)

LivenessVerdict = Literal[
    "violated", "proved", "vacuous", "holds", "not_proved", "unknown", "error"
]
COUNT_BITS = 3  # the counter saturates at K + 1 <= 7: "count <= K" is never trivially true


@dataclass(frozen=True)
class LivenessResult:
    """The spec's answer for one liveness property.

    ``violated``: ``prefix`` then ``loop`` repeated forever is a (fair) run refuting the property
    for ``vcpu``; ``depth`` is the lasso's length. ``proved``: k-liveness proved it for every
    vCPU (``k`` the bound K, ``lemmas`` the liveness lemmas kept). ``holds``: no lasso of at most
    ``depth`` steps (bounded). ``not_proved``: the k-liveness candidates were not inductive and no
    lasso was found within ``depth`` (not a violation). ``vacuous``: proved, but the premise
    was not shown reachable. ``covered``: the property's premise is
    reachable (a committed state with the vCPU in guest mode), per vCPU.
    """

    prop: str
    verdict: LivenessVerdict
    vcpu: str = ""
    prefix: tuple[Step, ...] = ()
    loop: tuple[Step, ...] = ()
    depth: int = 0
    k: int = 0
    seconds: float = 0.0
    fair: bool = True
    reason: str = ""
    lemmas: tuple[str, ...] = ()
    covered: dict[str, bool] = field(default_factory=dict)
    z3_version: str = field(default_factory=z3.get_version_string)

    @property
    def trace(self) -> tuple[Step, ...]:
        return self.prefix + self.loop

    @property
    def loop_start(self) -> int:
        return len(self.prefix)


# --- the pieces of section 6.11 ----------------------------------------------------------------


def is_environment(actor: str) -> bool:
    return not actor.startswith("vcpu")


def runnable(s: State, actor: str) -> Expr:
    """Whether the scheduler would run ``actor`` in ``s`` (§6.11): lock waits count; a vCPU in
    guest mode or crashed does not, nor a zapper or notifier whose bounded work is done."""
    layout = s.layout
    v = layout.vcpu(actor)
    if v is not None:
        return z3.Not(s.at(v, PC_GUEST, PC_CRASHED))
    if actor in layout.zappers:
        if layout.zaps_bits is None:
            return s.const(True)
        done = s[f"{actor}.zaps"] == s.bv(layout.config.max_zaps or 0, layout.zaps_bits)
        return z3.Not(z3.And(s.zat(actor, 0), done))
    if layout.invalidations_bits is None:
        return s.const(True)
    bound = s.bv(layout.config.max_invalidations or 0, layout.invalidations_bits)
    return z3.Or(s["notifier.started"], z3.ULT(s["notifier.invalidations"], bound))


def environment_done(s: State) -> Expr:
    """No zapper and not the notifier is runnable: their bounded work is finished."""
    actors = [a for a in _actors(s.layout) if is_environment(a)]
    return z3.And([z3.Not(runnable(s, a)) for a in actors]) if actors else s.const(True)


def _actors(layout: Layout) -> tuple[str, ...]:
    return layout.config.actors()


def _codes(layout: Layout, keep: Callable[[Step], bool]) -> list[int]:
    return [code for code, step in enumerate(layout.choices) if keep(step)]


def _one_of(layout: Layout, c: Expr, codes: Sequence[int]) -> Expr:
    tests = [is_choice(layout, c, code) for code in codes]
    return z3.Or(tests) if tests else z3.BoolVal(False, layout.ctx)


def allowed_step(layout: Layout, prop: str, vcpu: str, c: Expr) -> Expr:
    """The step ``c`` may be taken in a loop violating ``prop`` for ``vcpu`` (§6.11)."""
    no_map = Step(vcpu, "fault.map")
    if prop == "fault_progress":
        return _one_of(
            layout, c, _codes(layout, lambda st: st != no_map and not is_environment(st.actor))
        )
    return _one_of(layout, c, _codes(layout, lambda st: st.actor == vcpu and st != no_map))


def is_retry(s: State, c: Expr, t: State, v: VcpuInfo) -> Expr:
    """``c`` is a retry of ``v``: a stale ``fault.check`` (on to the unlock, the map skipped) or a
    ``fault.check_request`` that ends the fault."""
    layout = s.layout
    check = layout.code(Step(v.actor, "fault.check"))
    early = layout.code(Step(v.actor, "fault.check_request"))
    parts = []
    if check is not None:
        parts.append(z3.And(is_choice(layout, c, check), t.at(v, PC_UNLOCK)))
    if early is not None:
        parts.append(z3.And(is_choice(layout, c, early), t.at(v, PC_OUTSIDE)))
    return z3.Or(parts) if parts else s.const(False)


def needed_step(s: State, c: Expr, t: State, prop: str, v: VcpuInfo) -> Expr:
    """The loop must take this at least once: ``v vcpu.fault``, or a retry of ``v``."""
    if prop == "fault_progress":
        code = s.layout.code(Step(v.actor, "vcpu.fault"))
        return is_choice(s.layout, c, code) if code is not None else s.const(False)
    return is_retry(s, c, t, v)


def steps_of(layout: Layout, c: Expr, actor: str) -> Expr:
    return _one_of(layout, c, _codes(layout, lambda st: st.actor == actor))


def same_state(s: State, t: State) -> Expr:
    return z3.And([s[name] == t[name] for name in s])


def _check(layout: Layout) -> None:
    if layout.relaxed:  # pragma: no cover - only the necessity analysis relaxes facts
        raise ValueError("liveness runs on the section 6.3 relation only")


def _lasso_formula(
    u: Unrolling, lo: int, k: int, prop: str, fairness: bool, start: list[Expr]
) -> tuple[Expr, list[Expr]]:
    """Loop start one of ``start[lo..k-1]`` (fresh Booleans), ``s_k = s_l``, the violation for
    some vCPU and fairness on the loop. Returns the formula and the per-vCPU violations."""
    layout = u.layout
    s, c = u.states, u.choices
    parts: list[Expr] = [z3.Or(start)]
    parts += [z3.Implies(start[j - lo], same_state(s[j], s[k])) for j in range(lo, k)]
    in_loop = [z3.Or(start[: i - lo + 1]) for i in range(lo, k)]
    violations = []
    for v in layout.vcpus:
        stay = [
            z3.Implies(in_loop[i - lo], allowed_step(layout, prop, v.actor, c[i]))
            for i in range(lo, k)
        ]
        need = [
            z3.And(in_loop[i - lo], needed_step(s[i], c[i], s[i + 1], prop, v))
            for i in range(lo, k)
        ]
        violations.append(z3.And(*stay, z3.Or(need)))
    parts.append(z3.Or(violations))
    if fairness:
        for actor in _actors(layout):
            met = [
                z3.And(
                    in_loop[i - lo],
                    z3.Or(z3.Not(runnable(s[i], actor)), steps_of(layout, c[i], actor)),
                )
                for i in range(lo, k)
            ]
            parts.append(z3.Or(met))
    return z3.And(parts), violations


def lasso_bmc(
    variant: Variant,
    config: Config,
    prop: str,
    depth: int = 30,
    fairness: bool = True,
    timeout_s: float = 300.0,
) -> LivenessResult:
    """The shortest (fair) lasso of at most ``depth`` steps refuting ``prop``, or ``holds`` (to
    that depth: a bounded answer, never a proof)."""
    start = time.monotonic()
    deadline = start + timeout_s
    if prop not in LIVENESS_PROPERTIES:
        return LivenessResult(prop, "error", reason=f"unknown property {prop!r}")
    try:
        layout = make_layout(variant, config, horizon=depth)
    except ValueError as exc:
        return LivenessResult(prop, "error", reason=str(exc))
    _check(layout)
    u = Unrolling(layout)
    for k in range(1, depth + 1):
        u.extend()
        loop_at = [z3.Bool(f"loop@{k}_{j}", layout.ctx) for j in range(k)]
        formula, violations = _lasso_formula(u, 0, k, prop, fairness, loop_at)
        lit = u.literal(formula)
        left = deadline - time.monotonic()
        if left <= 0:
            return _unknown(prop, fairness, k - 1, start, "timeout")
        answer = u.check(lit, timeout_s=left)
        if answer == z3.unsat:
            continue
        if answer != z3.sat:
            return _unknown(prop, fairness, k - 1, start, str(u.solver.reason_unknown()))
        model = u.solver.model()
        steps = tuple(decode_step(layout, model, ch) for ch in u.choices[:k])
        loop = min(j for j in range(k) if z3.is_true(model.eval(loop_at[j], True)))
        vcpu = next(
            v.actor
            for v, bad in zip(layout.vcpus, violations, strict=True)
            if z3.is_true(model.eval(bad, True))
        )
        return LivenessResult(
            prop,
            "violated",
            vcpu,
            steps[:loop],
            steps[loop:],
            depth=k,
            seconds=time.monotonic() - start,
            fair=fairness,
            reason=f"a {'fair ' if fairness else ''}lasso of {k} steps (loop of {k - loop})",
        )
    return LivenessResult(
        prop,
        "holds",
        depth=depth,
        seconds=time.monotonic() - start,
        fair=fairness,
        reason=f"no {'fair ' if fairness else ''}lasso of at most {depth} steps",
    )


def _unknown(prop: str, fairness: bool, depth: int, start: float, why: str) -> LivenessResult:
    return LivenessResult(
        prop,
        "unknown",
        depth=depth,
        seconds=time.monotonic() - start,
        fair=fairness,
        reason=f"z3 gave no answer beyond depth {depth}: {why}",
    )


def check_lasso(
    variant: Variant,
    config: Config,
    prop: str,
    vcpu: str,
    steps: Sequence[Step],
    loop: int,
    fairness: bool = True,
) -> str | None:
    """Why ``steps`` (the loop starting after ``loop`` of them) is *not* a (fair) lasso refuting
    ``prop`` for ``vcpu`` in the spec, or None when it is one."""
    layout = make_layout(variant, config, horizon=max(1, len(steps)))
    v = layout.vcpu(vcpu)
    if v is None:
        return f"no vCPU {vcpu!r} in this configuration"
    if not 0 <= loop < len(steps):
        return f"loop start {loop} is not inside the trace of {len(steps)} steps"
    u = Unrolling(layout)
    for n, step in enumerate(steps, 1):
        code = layout.code(step)
        if code is None:
            return f"step {n} ({step}) is not a step of this variant and configuration"
        ch = u.extend()
        u.solver.add(is_choice(layout, ch, code))
        if u.check() != z3.sat:
            return f"step {n} ({step}) is not enabled"
    k = len(steps)
    s, c = u.states, u.choices
    if u.check(u.literal(same_state(s[loop], s[k]))) != z3.sat:
        return f"the state after step {k} is not the state after step {loop}"
    rng = range(loop, k)
    if u.check(u.literal(z3.And([allowed_step(layout, prop, vcpu, c[i]) for i in rng]))) != z3.sat:
        return f"the loop takes a step that a violation of {prop} excludes"
    need = z3.Or([needed_step(s[i], c[i], s[i + 1], prop, v) for i in rng])
    if u.check(u.literal(need)) != z3.sat:
        what = "vcpu.fault" if prop == "fault_progress" else "retry"
        return f"the loop has no {what} of {vcpu}"
    if fairness:
        for actor in _actors(layout):
            met = z3.Or(
                [z3.Or(z3.Not(runnable(s[i], actor)), steps_of(layout, c[i], actor)) for i in rng]
            )
            if u.check(u.literal(met)) != z3.sat:
                return f"unfair loop: {actor} is runnable throughout and never steps"
    return None


# --- k-liveness ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Extended:
    """One frame of the extended system: the model's state, the commit flag, the counter."""

    x: State
    committed: Expr
    count: Expr


def _frame(layout: Layout, suffix: str) -> _Extended:
    return _Extended(
        make_state(layout, suffix),
        z3.Bool(f"committed@{suffix}", layout.ctx),
        z3.BitVec(f"count@{suffix}", COUNT_BITS, layout.ctx),
    )


def _premise(s: State, fairness: bool) -> Expr:
    return environment_done(s) if fairness else s.const(True)


def _extended_initial(e: _Extended, fairness: bool) -> Expr:
    zero = z3.BitVecVal(0, COUNT_BITS, e.x.layout.ctx)
    return z3.And(initial(e.x), e.count == zero, z3.Implies(e.committed, _premise(e.x, fairness)))


def _extended_step(
    a: _Extended, c: Expr, b: _Extended, prop: str, v: VcpuInfo, fairness: bool, bound: int
) -> Expr:
    layout = a.x.layout
    fault = layout.code(Step(v.actor, "vcpu.fault"))
    counts = (
        z3.And(a.committed, is_choice(layout, c, fault)) if fault is not None else a.x.const(False)
    )
    top = z3.BitVecVal(bound + 1, COUNT_BITS, layout.ctx)
    bumped = z3.If(a.count == top, top, a.count + 1)
    return z3.And(
        encode(a.x, c, b.x),
        z3.Implies(a.committed, b.committed),
        z3.Implies(z3.And(b.committed, z3.Not(a.committed)), _premise(b.x, fairness)),
        z3.Implies(a.committed, allowed_step(layout, prop, v.actor, c)),
        b.count == z3.If(counts, bumped, a.count),
    )


def ready(s: State, v: VcpuInfo) -> Expr:
    """``v``'s root is loaded, no request or unload is pending, and ``is_page_fault_stale()``
    (its ``fault.check`` transition) would not call the fault stale with the notifier quiet:
    the check's next position, evaluated as if ``v`` were at ``fault.check`` with no notifier
    change since its snapshot, is ``fault.map`` (or the a955cad84cda crash, after which ``v``
    never faults again)."""
    layout = s.layout
    check = transition(s, Step(v.actor, "fault.check"))
    subs = [(s.pc(v), s.pc_val(PC_CHECK)), (s.flag(v, "seq_changed"), s.const(False))]
    if layout.notifier:
        subs.append((s["notifier.started"], s.const(False)))
    goes_to = z3.substitute(check.updates[f"{v.actor}.pc"], *subs)
    return z3.And(
        s.root(v, "loaded"),
        z3.Not(s.flag(v, "request")),
        z3.Not(s.flag(v, "unload_due")),
        z3.Or(goes_to == s.pc_val(PC_MAP), goes_to == s.pc_val(PC_CRASHED)),
    )


def _fresh_fault(s: State, v: VcpuInfo) -> Expr:
    """In a fault before ``fault.map``, with no notifier change since the snapshot once taken."""
    quiet = z3.Not(s.flag(v, "seq_changed"))
    return z3.Or(
        s.at(v, PC_SNAPSHOT, PC_MAP, PC_CRASHED),
        z3.And(s.at(v, PC_FAULTIN, PC_CHECK_REQUEST, PC_LOCK, PC_CHECK), quiet),
    )


Candidate = tuple[str, Callable[[_Extended], Expr]]


def _guest_no_request(w: VcpuInfo) -> Callable[[_Extended], Expr]:
    """``zap.request`` kicks every guest out and ``vcpu.enter`` needs no request pending."""
    return lambda e: z3.Implies(e.x.at(w, PC_GUEST), z3.Not(e.x.flag(w, "request")))


def _candidates(layout: Layout, v: VcpuInfo, bound: int, fairness: bool) -> list[Candidate]:
    one = z3.BitVecVal(1, COUNT_BITS, layout.ctx)
    k = z3.BitVecVal(bound, COUNT_BITS, layout.ctx)
    zero = z3.BitVecVal(0, COUNT_BITS, layout.ctx)
    out: list[Candidate] = [("count_after_commit", lambda e: z3.Or(e.committed, e.count == zero))]
    if fairness:
        out.append(("committed_env_done", lambda e: z3.Implies(e.committed, environment_done(e.x))))
    out += [(f"guest_no_request[{w.actor}]", _guest_no_request(w)) for w in layout.vcpus]
    progress = f"fault_progresses[{v.actor}]"
    out.append(
        (
            progress,
            lambda e: z3.Implies(
                z3.And(e.committed, z3.UGE(e.count, one)),
                z3.And(ready(e.x, v), _fresh_fault(e.x, v)),
            ),
        )
    )
    out.append((f"bound[{v.actor}]", lambda e: z3.ULE(e.count, k)))
    return out


@dataclass(frozen=True)
class _Houdini:
    kept: tuple[str, ...]
    dropped: tuple[str, ...]
    unknown: str = ""


def _houdini(
    layout: Layout,
    prop: str,
    v: VcpuInfo,
    bound: int,
    fairness: bool,
    assumed: Sequence[Callable[[State], Expr]],
    deadline: float,
) -> _Houdini:
    """The largest inductive subset of the candidates on the extended system (initiation, then
    consecution of the conjunction), the proved base lemmas assumed in every frame."""
    ctx = layout.ctx
    pool = _candidates(layout, v, bound, fairness)
    a, b = _frame(layout, "L0"), _frame(layout, "L1")
    init = make_solver(ctx)
    init.add(_extended_initial(a, fairness))
    alive: list[Candidate] = []
    dropped: list[str] = []
    for name, pred in pool:
        init.set("timeout", max(1, int((deadline - time.monotonic()) * 1000)))
        answer = init.check(z3.Not(pred(a)))
        if answer == z3.unsat:
            alive.append((name, pred))
        elif answer == z3.sat:
            dropped.append(name)
        else:
            return _Houdini((), (), f"initiation: {init.reason_unknown()}")
    solver = make_solver(ctx)
    solver.add(_extended_step(a, make_choice(layout, "L0"), b, prop, v, fairness, bound))
    for lemma in assumed:
        solver.add(lemma(a.x), lemma(b.x))
    lits = {name: z3.Bool(f"cand!{name}", ctx) for name, _ in pool}
    for name, pred in pool:
        solver.add(z3.Implies(lits[name], pred(a)))
    rounds = 0
    while alive:
        rounds += 1
        left = deadline - time.monotonic()
        if left <= 0:
            return _Houdini((), (), "timeout")
        solver.set("timeout", max(1, int(left * 1000)))
        query = z3.Bool(f"round!{rounds}", ctx)
        solver.add(z3.Implies(query, z3.Or([z3.Not(pred(b)) for _, pred in alive])))
        answer = solver.check(query, *[lits[name] for name, _ in alive])
        if answer == z3.unsat:
            break
        if answer != z3.sat:
            return _Houdini((), (), f"consecution: {solver.reason_unknown()}")
        model = solver.model()
        failed = [name for name, pred in alive if z3.is_false(model.eval(pred(b), True))]
        assert failed
        dropped += failed
        alive = [(n, p) for n, p in alive if n not in failed]
    return _Houdini(tuple(n for n, _ in alive), tuple(dropped))


def _premise_reachable(
    layout: Layout, v: VcpuInfo, fairness: bool, depth: int, deadline: float
) -> bool:
    """Cover: a reachable state, within ``depth`` steps, with the environment finished (with
    fairness) and ``v`` in guest mode, so that its next step may be ``vcpu.fault``."""
    u = Unrolling(layout)
    for i in range(depth + 1):
        if i:
            u.extend()
        target = z3.And(_premise(u.states[i], fairness), u.states[i].at(v, PC_GUEST))
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if u.check(u.literal(target), timeout_s=left) == z3.sat:
            return True
    return False


def prove_liveness(
    variant: Variant,
    config: Config,
    prop: str,
    fairness: bool = True,
    max_k: int = 3,
    depth: int = 30,
    cover_depth: int = 30,
    timeout_s: float = 300.0,
) -> LivenessResult:
    """Prove ``prop`` for every vCPU by k-liveness (``K = 1 .. max_k``); where that fails, look
    for a lasso of at most ``depth`` steps (then ``violated``; else ``not_proved``)."""
    start = time.monotonic()
    deadline = start + timeout_s
    if prop not in LIVENESS_PROPERTIES:
        return LivenessResult(prop, "error", reason=f"unknown property {prop!r}")
    if not 1 <= max_k < (1 << COUNT_BITS) - 1:
        return LivenessResult(prop, "error", reason=f"max_k must be 1 .. {(1 << COUNT_BITS) - 2}")
    try:
        layout = make_layout(variant, config, horizon=max(depth, cover_depth))
    except ValueError as exc:
        return LivenessResult(prop, "error", reason=str(exc))
    _check(layout)
    lemma_proof = prove_lemmas(layout, deadline=deadline)
    assumed = [lemma.predicate for lemma in lemma_proof.proved]
    kept: list[str] = []
    ks: list[int] = []
    failed = ""
    for v in layout.vcpus:
        proved_at = 0
        for bound in range(1, max_k + 1):
            h = _houdini(layout, prop, v, bound, fairness, assumed, deadline)
            if h.unknown:
                return _unknown(prop, fairness, 0, start, h.unknown)
            if f"bound[{v.actor}]" in h.kept:
                proved_at = bound
                kept += [n for n in h.kept if n not in kept]
                break
        if not proved_at:
            failed = v.actor
            break
        ks.append(proved_at)
    if failed:
        found = lasso_bmc(
            variant, config, prop, depth, fairness, max(1.0, deadline - time.monotonic())
        )
        if found.verdict in ("violated", "unknown", "error"):
            return _replace_time(found, start)
        return LivenessResult(
            prop,
            "not_proved",
            depth=depth,
            seconds=time.monotonic() - start,
            fair=fairness,
            reason=(
                f"k-liveness: the counter of {failed} is not shown bounded (K <= {max_k}); "
                f"no lasso of at most {depth} steps"
            ),
        )
    covered = {
        v.actor: _premise_reachable(layout, v, fairness, cover_depth, deadline)
        for v in layout.vcpus
    }
    verdict: LivenessVerdict = "proved"
    reason = f"k-liveness, K = {max(ks)}: the fault counter after the commit is inductively bounded"
    if not all(covered.values()):
        missing = ", ".join(a for a, ok in covered.items() if not ok)
        verdict = "vacuous"
        reason = (
            f"vacuous: the premise (environment done, {missing} in guest) is not reached "
            f"in {cover_depth} steps"
        )
    return LivenessResult(
        prop,
        verdict,
        k=max(ks),
        seconds=time.monotonic() - start,
        fair=fairness,
        reason=reason,
        lemmas=tuple(kept),
        covered=covered,
        depth=cover_depth,
    )


def _replace_time(result: LivenessResult, start: float) -> LivenessResult:
    from dataclasses import replace

    return replace(result, seconds=time.monotonic() - start)
