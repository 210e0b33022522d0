"""Knob handling: a variant and a configuration, resolved into a static *layout*.

Knobs are Python-level constants chosen at encoding time (``docs/protocol.md`` section 6): the
transition relation is built specialised to one variant, so no knob is a solver variable. The
layout fixes everything static: each vCPU's root kind, whether its root has a shadow page, which
lock its faults take, the zapper's program (section 6.3, with the knob-dependent extra steps), and
the numbering of the step choices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import z3

from kvmmu.vocab import Config, Knobs, Step, Variant, config_error

LockMode = Literal["read", "write"]

# vCPU program counter: the loop, guest mode, crashed, or one position of the fault path (the
# position names the step the vCPU takes next).
PC_OUTSIDE = 0
PC_GUEST = 1
PC_CRASHED = 2
PC_SNAPSHOT = 3
PC_FAULTIN = 4
PC_CHECK_REQUEST = 5
PC_LOCK = 6
PC_CHECK = 7
PC_MAP = 8
PC_UNLOCK = 9
PC_BITS = 4

# the position of each fault-path step (the step is enabled only there)
FAULT_STEP_PC: Mapping[str, int] = MappingProxyType(
    {
        "fault.snapshot": PC_SNAPSHOT,
        "fault.faultin": PC_FAULTIN,
        "fault.check_request": PC_CHECK_REQUEST,
        "fault.lock": PC_LOCK,
        "fault.check": PC_CHECK,
        "fault.map": PC_MAP,
        "fault.unlock": PC_UNLOCK,
    }
)
# positions at which a vCPU holds mmu_lock (after fault.lock; a crashed vCPU keeps it)
PCS_HOLDING_LOCK: tuple[int, ...] = (PC_CHECK, PC_MAP, PC_UNLOCK, PC_CRASHED)

# the verdict of fault.check, with its reason (the cover targets need the reason)
STALE_NO = 0
STALE_OBSOLETE = 1  # part 1 or 2 of the check
STALE_NOTIFIER = 2  # part 3 of the check
STALE_BITS = 2


@dataclass(frozen=True)
class VcpuInfo:
    """What is static about one vCPU: its root kind, shadow page, and fault lock mode."""

    index: int
    actor: str
    kind: str
    has_sp: bool
    lock_mode: LockMode


@dataclass(frozen=True)
class ZapperProgram:
    """The zapper's program (``kvm_mmu_zap_all_fast()``), section 6.3.

    ``positions[p]`` maps each step enabled at position ``p`` to the next position; position 0 is
    ``zap.lock`` (idle, between zaps). ``holds_lock``: positions at which the zapper holds
    ``mmu_lock`` for write. ``window``: positions after ``zap.new_gen`` and before ``zap.request``
    of the same zap (empty with ``zap.request_before_gen``).
    """

    positions: tuple[Mapping[str, int], ...]
    holds_lock: frozenset[int]
    window: frozenset[int]
    # only in a program built with dropped-fact alternatives (spec.facts): the step
    # ``step`` at position ``p`` is enabled only where, for one of ``needs[(p, step)]``, every
    # fact named is dropped; a step not listed is unconditional
    needs: Mapping[tuple[int, str], tuple[frozenset[str], ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    @property
    def bits(self) -> int:
        return max(1, (len(self.positions) - 1).bit_length())

    def positions_of(self, step: str) -> tuple[int, ...]:
        return tuple(p for p, steps in enumerate(self.positions) if step in steps)

    def step_names(self) -> tuple[str, ...]:
        names: list[str] = []
        for steps in self.positions:
            names += [n for n in steps if n not in names]
        return tuple(names)


def zapper_program(knobs: Knobs) -> ZapperProgram:
    """Build the zapper program of section 6.3 for these knobs."""
    first, second = ("zap.new_gen", "zap.request")
    if knobs.request_before_gen:
        first, second = second, first
    linear = ["zap.lock", first]
    if knobs.unlock_between_gen_and_request:
        linear += ["zap.unlock_mid", "zap.relock"]
    linear.append(second)
    positions: list[dict[str, int]] = [{name: i + 1} for i, name in enumerate(linear)]
    p = len(positions)
    if knobs.zap_yield:
        # p: yield or zap; p+1: relock after the yield; p+2: zap (no second yield); p+3: unlock
        positions.append({"zap.yield": p + 1, "zap.zap_obsolete": p + 3})
        positions.append({"zap.relock": p + 2})
        positions.append({"zap.zap_obsolete": p + 3})
        positions.append({"zap.unlock": 0})
    else:
        positions.append({"zap.zap_obsolete": p + 1})
        positions.append({"zap.unlock": 0})
    released = {i for i, steps in enumerate(positions) if "zap.relock" in steps}
    holds = frozenset(i for i in range(1, len(positions)) if i not in released)
    window: frozenset[int] = frozenset()
    if not knobs.request_before_gen:
        gen_at = linear.index("zap.new_gen")
        req_at = linear.index("zap.request")
        window = frozenset(range(gen_at + 1, req_at + 1))
    return ZapperProgram(
        tuple(MappingProxyType(d) for d in positions),
        holds,
        window,
    )


def relaxed_zapper_program(knobs: Knobs, relax: frozenset[str]) -> ZapperProgram:
    """The zapper program with the orderings of ``relax`` (``spec.facts.PROGRAM_FACTS``)
    made optional: each run of ``kvm_mmu_zap_all_fast()`` the knobs allow, plus the runs that
    break a relaxed fact, which are enabled only where that fact's literal is false.

    The runs are merged into a tree (a trie on their steps, every run back to position 0 after
    ``zap.unlock``), so that each position has one history: ``holds_lock`` and ``window`` are
    read from it. Used only by the necessity analysis; proofs use :func:`zapper_program`.
    """
    orders: list[tuple[tuple[str, str], frozenset[str]]] = []
    base = ("zap.new_gen", "zap.request")
    orders.append((base[::-1] if knobs.request_before_gen else base, frozenset()))
    if "zap.gen_before_request" in relax:
        orders.append((base[::-1], frozenset({"zap.gen_before_request"})))
    unlocks: list[tuple[tuple[str, ...], frozenset[str]]] = [
        (
            ("zap.unlock_mid", "zap.relock") if knobs.unlock_between_gen_and_request else (),
            frozenset(),
        )
    ]
    if "zap.no_unlock_between_gen_and_request" in relax:
        unlocks.append(
            (("zap.unlock_mid", "zap.relock"), frozenset({"zap.no_unlock_between_gen_and_request"}))
        )
    tails: list[tuple[str, ...]] = [("zap.zap_obsolete", "zap.unlock")]
    if knobs.zap_yield:
        tails.insert(0, ("zap.yield", "zap.relock", "zap.zap_obsolete", "zap.unlock"))
    runs: list[tuple[tuple[str, ...], frozenset[str]]] = []
    for (first, second), needs_order in orders:
        for mid, needs_unlock in unlocks:
            for tail in tails:
                run = ("zap.lock", first, *mid, second, *tail)
                runs.append((run, needs_order | needs_unlock))
    positions: list[dict[str, int]] = [{}]
    history: list[tuple[str, ...]] = [()]
    alternatives: dict[tuple[int, str], set[frozenset[str]]] = {}
    for run, needs in runs:
        p = 0
        for i, step in enumerate(run):
            last = i == len(run) - 1
            if step not in positions[p]:
                if last:
                    positions[p][step] = 0
                else:
                    positions.append({})
                    history.append((*history[p], step))
                    positions[p][step] = len(positions) - 1
            alternatives.setdefault((p, step), set()).add(needs)
            p = positions[p][step]
    needs_map: dict[tuple[int, str], tuple[frozenset[str], ...]] = {}
    for edge, sets in alternatives.items():
        if frozenset() not in sets:
            # minimal alternatives only, in a fixed order
            minimal = [a for a in sets if not any(b < a for b in sets)]
            needs_map[edge] = tuple(sorted(minimal, key=sorted))
    holds: set[int] = set()
    window: set[int] = set()
    for p, past in enumerate(history):
        if p == 0:
            continue
        held = False
        for step in past:
            if step in ("zap.lock", "zap.relock"):
                held = True
            elif step in ("zap.unlock_mid", "zap.yield"):
                held = False
        if held:
            holds.add(p)
        if "zap.new_gen" in past and "zap.request" not in past:
            window.add(p)
    return ZapperProgram(
        tuple(MappingProxyType(d) for d in positions),
        frozenset(holds),
        frozenset(window),
        MappingProxyType(needs_map),
    )


def _bits_for(bound: int) -> int:
    return max(1, bound.bit_length())


@dataclass(frozen=True)
class Layout:
    """A variant and a configuration resolved for encoding.

    ``horizon`` is the number of steps an encoding will unroll; it sizes the generation counter
    when ``max_zaps`` is unbounded, so the counter never wraps within the horizon. ``ctx`` is the
    Z3 context of every term built for this layout.
    """

    variant: Variant
    config: Config
    knobs: Knobs
    vcpus: tuple[VcpuInfo, ...]
    zappers: tuple[str, ...]
    notifier: bool
    program: ZapperProgram
    choices: tuple[Step, ...]
    horizon: int
    # every term of one encoding lives in this fresh Z3 context: runs do not share (or leak)
    # terms, so a run's answer does not depend on what ran before it in the process
    ctx: Any = field(default_factory=z3.Context, compare=False, repr=False)
    # the necessity analysis only (spec.facts): fact name -> its assumption literal; empty
    # in every proof, where each fact holds by construction and the encoding is section 6.3's
    relaxed: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False
    )

    @property
    def choice_bits(self) -> int:
        return _bits_for(len(self.choices) - 1)

    @property
    def gen_bits(self) -> int:
        """Width of the generation counter (``generation: counter``), enough for every zap."""
        if self.config.max_zaps is None:
            return _bits_for(self.horizon)
        return _bits_for(self.config.max_zaps * len(self.zappers))

    @property
    def zaps_bits(self) -> int | None:
        """Width of the per-zapper zap count, None when zaps are unbounded."""
        bound = self.config.max_zaps
        return None if bound is None else _bits_for(bound)

    @property
    def invalidations_bits(self) -> int | None:
        bound = self.config.max_invalidations
        return None if bound is None else _bits_for(bound)

    def code(self, step: Step) -> int | None:
        """The choice number of ``step``; None when the variant or configuration lacks it."""
        try:
            return self.choices.index(step)
        except ValueError:
            return None

    def vcpu(self, actor: str) -> VcpuInfo | None:
        for info in self.vcpus:
            if info.actor == actor:
                return info
        return None


def vcpu_step_names(knobs: Knobs) -> tuple[str, ...]:
    names = [
        "vcpu.check_request",
        "vcpu.unload",
        "vcpu.load",
        "vcpu.enter",
        "vcpu.fault",
        "fault.snapshot",
        "fault.faultin",
    ]
    if knobs.request_before_lock:
        names.append("fault.check_request")
    names += ["fault.lock", "fault.check", "fault.map", "fault.unlock"]
    return tuple(names)


def make_layout(
    variant: Variant, config: Config, horizon: int, relax: Sequence[str] = ()
) -> Layout:
    """Resolve ``variant`` and ``config``; raises ValueError when either is not acceptable.

    ``relax``: facts (``spec.facts``) that get an assumption literal, so that a solver may
    drop them; only the necessity analysis asks for any. Each must be offered by the problem.
    """
    reason = config_error(config)
    if reason:
        raise ValueError(reason)
    knobs = Knobs.of(variant)
    vcpus: list[VcpuInfo] = []
    for i, kind in enumerate(config.vcpus):
        has_sp = not (kind == "special" and not knobs.special_roots_have_sp)
        mode: LockMode
        if knobs.fault_lock == "auto":
            mode = "read" if kind == "tdp" else "write"
        else:
            mode = "read" if knobs.fault_lock == "read" else "write"
        vcpus.append(VcpuInfo(i, f"vcpu{i}", kind, has_sp, mode))
    zappers = ("zapper", "zapper1")[: config.zappers]
    ctx = z3.Context()
    relaxed: Mapping[str, Any] = MappingProxyType({})
    program = zapper_program(knobs)
    if relax:
        from spec import facts

        have = facts.offered(knobs, config)
        for name in relax:
            if name not in have:
                raise ValueError(f"fact {name!r} is not offered here (offered: {', '.join(have)})")
        relaxed = facts.make_literals(ctx, tuple(dict.fromkeys(relax)))
        on_program = frozenset(relax) & frozenset(facts.PROGRAM_FACTS)
        if on_program:
            program = relaxed_zapper_program(knobs, on_program)
    choices: list[Step] = []
    for info in vcpus:
        choices += [Step(info.actor, name) for name in vcpu_step_names(knobs)]
    for z in zappers:
        choices += [Step(z, name) for name in program.step_names()]
    if config.notifier:
        choices += [Step("notifier", "mn.start"), Step("notifier", "mn.end")]
    return Layout(
        variant=variant,
        config=config,
        knobs=knobs,
        vcpus=tuple(vcpus),
        zappers=zappers,
        notifier=config.notifier,
        program=program,
        choices=tuple(choices),
        horizon=max(1, horizon),
        ctx=ctx,
        relaxed=relaxed,
    )
