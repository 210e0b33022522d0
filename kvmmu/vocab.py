"""The shared vocabulary of kvmmu: actors, steps, invariants, cover targets, knobs, presets.

These are *names and data only*, the interface of ``docs/protocol.md`` sections 2 to 4 and 6.
The Z3 spec (``spec``) and the implementation (``impl``) both import this module and
nothing of each other; no protocol logic lives here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

# --- actors and steps (protocol.md section 2, section 6.3) -----------------------------------

ActorKind = Literal["vcpu", "zapper", "notifier"]

VCPU_STEPS: tuple[str, ...] = (
    "vcpu.check_request",
    "vcpu.unload",
    "vcpu.load",
    "vcpu.enter",
    "vcpu.fault",
    "fault.snapshot",
    "fault.faultin",
    "fault.check_request",
    "fault.lock",
    "fault.check",
    "fault.map",
    "fault.unlock",
)
ZAPPER_STEPS: tuple[str, ...] = (
    "zap.lock",
    "zap.new_gen",
    "zap.request",
    "zap.unlock_mid",
    "zap.yield",
    "zap.relock",
    "zap.zap_obsolete",
    "zap.unlock",
)
NOTIFIER_STEPS: tuple[str, ...] = ("mn.start", "mn.end")

STEPS_BY_KIND: Mapping[ActorKind, tuple[str, ...]] = MappingProxyType(
    {"vcpu": VCPU_STEPS, "zapper": ZAPPER_STEPS, "notifier": NOTIFIER_STEPS}
)

_ACTOR_RE = re.compile(r"^(vcpu(0|[1-9][0-9]*)|zapper1?|notifier)$")


def actor_kind(actor: str) -> ActorKind | None:
    """The kind of a syntactically valid actor name (``vcpu3``, ``zapper``, ``zapper1``,
    ``notifier``), or None."""
    if not _ACTOR_RE.match(actor):
        return None
    if actor.startswith("vcpu"):
        return "vcpu"
    if actor.startswith("zapper"):
        return "zapper"
    return "notifier"


@dataclass(frozen=True, order=True)
class Step:
    """One atomic step of a trace: ``ACTOR STEP``, e.g. ``vcpu0 fault.map``."""

    actor: str
    name: str

    def __str__(self) -> str:
        return f"{self.actor} {self.name}"

    @staticmethod
    def parse(text: str) -> Step:
        """Parse ``"ACTOR STEP"``; raises ValueError with a readable reason."""
        parts = text.split()
        if len(parts) != 2:
            raise ValueError(f"expected 'ACTOR STEP', got {text!r}")
        actor, name = parts
        kind = actor_kind(actor)
        if kind is None:
            raise ValueError(f"unknown actor {actor!r} (vcpuN, zapper, zapper1, notifier)")
        if name not in STEPS_BY_KIND[kind]:
            allowed = ", ".join(STEPS_BY_KIND[kind])
            raise ValueError(f"{actor} has no step {name!r} (its steps: {allowed})")
        return Step(actor, name)


# --- invariants and cover targets (protocol.md section 3, sections 6.4 and 6.5) ------------------

INVARIANTS: tuple[str, ...] = (
    "no_spte_in_obsolete_root",
    "no_guest_on_obsolete_root",
    "no_use_after_free",
    "no_stale_pfn",
    "no_null_deref",
)

# Liveness properties (protocol.md section 6.11): temporal properties over fair infinite runs,
# kept apart from INVARIANTS so that the safety machinery (BMC, k-induction, obligations'
# manifest rule, explore columns) is untouched by them.
LIVENESS_PROPERTIES: tuple[str, ...] = (
    "fault_progress",
    "no_retry_livelock",
)

COVER_TARGETS: tuple[str, ...] = (
    "fault.map",
    "zap.zap_obsolete",
    "retry.obsolete",
    "retry.notifier",
    "enter.after_reload",
)


# --- knobs and presets (protocol.md section 4, section 6.6) ---------------------------------------

KNOBS: Mapping[str, tuple[str | bool, ...]] = MappingProxyType(
    {
        # name: allowed values, the default (the v5.16 seed patch) first
        "stale_check.obsolete_sp": ("guarded", "none", "unguarded"),
        "stale_check.reload_request": ("test", "none", "check"),
        "stale_check.request_before_lock": (False, True),
        "stale_check.mmu_notifier": (True, False),
        "special_roots_have_sp": (False, True),
        "fault_lock": ("auto", "write", "read"),
        "zap.unlock_between_gen_and_request": (False, True),
        "zap.request_before_gen": (False, True),
        "zap.yield": (False, True),
        "zap.serialized": (True, False),
        "zap.respect_root_count": (True, False),
        "request": ("reload", "free_obsolete"),
        "generation": ("bit", "counter"),
        "kvm_mmu_free_obsolete_roots.is_obsolete_root": ("locked", "lockless"),
        "is_page_fault_stale.mmu_seq": ("unsigned_long", "int"),
    }
)

KnobValue = str | bool

PRESETS: Mapping[str, Mapping[str, KnobValue]] = MappingProxyType(
    {
        "v5.15": {"stale_check.obsolete_sp": "none", "stale_check.reload_request": "none"},
        "v5.16-rc4": {"stale_check.obsolete_sp": "unguarded", "stale_check.reload_request": "none"},
        "v5.16": {},
        "paolo": {"stale_check.obsolete_sp": "guarded", "stale_check.reload_request": "none"},
        "v5.18": {"request": "free_obsolete"},
        "lai": {
            "special_roots_have_sp": True,
            "stale_check.obsolete_sp": "guarded",
            "stale_check.reload_request": "none",
        },
    }
)

DEFAULT_PRESET = "v5.16"


@dataclass(frozen=True)
class Variant:
    """A protocol variant: a value for every knob. ``name`` is for reports only."""

    knobs: Mapping[str, KnobValue]
    name: str = DEFAULT_PRESET

    def __getitem__(self, knob: str) -> KnobValue:
        return self.knobs[knob]

    def as_dict(self) -> dict[str, KnobValue]:
        return dict(self.knobs)

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.knobs.items()))))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Variant) and (self.name, dict(self.knobs)) == (
            other.name,
            dict(other.knobs),
        )


def knob_error(knob: str, value: object) -> str | None:
    """Why ``knob: value`` is not acceptable, or None when it is."""
    if knob not in KNOBS:
        return f"unknown knob {knob!r} (known: {', '.join(KNOBS)})"
    allowed = KNOBS[knob]
    # bool is a subclass of int, and YAML's 'true' must not match a string value: compare types too
    if not any(type(value) is type(a) and value == a for a in allowed):
        shown = ", ".join(_show(a) for a in allowed)
        # a string given in quotes, so that an empty or blank value is visible
        given = repr(value) if isinstance(value, str) else _show(value)
        return f"knob {knob!r} takes one of {shown}, not {given}"
    return None


def _show(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def make_variant(
    base: str = DEFAULT_PRESET, overrides: Mapping[str, KnobValue] | None = None
) -> Variant:
    """The variant ``base`` (a preset) with ``overrides``; raises ValueError on bad names."""
    if base not in PRESETS:
        raise ValueError(f"unknown preset {base!r} (known: {', '.join(PRESETS)})")
    overrides = dict(overrides or {})
    for knob, value in overrides.items():
        reason = knob_error(knob, value)
        if reason:
            raise ValueError(reason)
    knobs: dict[str, KnobValue] = {k: v[0] for k, v in KNOBS.items()}
    knobs.update(PRESETS[base])
    knobs.update(overrides)
    name = (
        base
        if not overrides
        else base + "+" + ",".join(f"{k}={_show(v)}" for k, v in sorted(overrides.items()))
    )
    return Variant(MappingProxyType(knobs), name)


def override(variant: Variant, overrides: Mapping[str, KnobValue]) -> Variant:
    """``variant`` with some knobs changed; raises ValueError on bad names or values."""
    if not overrides:
        return variant
    for knob, value in overrides.items():
        reason = knob_error(knob, value)
        if reason:
            raise ValueError(reason)
    knobs = {**variant.knobs, **overrides}
    shown = ",".join(f"{k}={_show(v)}" for k, v in sorted(overrides.items()))
    return Variant(MappingProxyType(knobs), f"{variant.name}+{shown}")


def variant_spec(variant: Variant) -> str | dict[str, object]:
    """How a case or variant file names ``variant``: a preset name when it is exactly a preset,
    else ``{base: v5.16, knobs: {...}}`` with the knobs that differ from the defaults."""
    for preset in PRESETS:
        if dict(make_variant(preset).knobs) == dict(variant.knobs):
            return preset
    default = make_variant(DEFAULT_PRESET)
    diff = {k: v for k, v in variant.knobs.items() if default[k] != v}
    return {"base": DEFAULT_PRESET, "knobs": diff}


@dataclass(frozen=True)
class Knobs:
    """Every knob of a variant as a typed field (``docs/protocol.md`` sections 4 and 6.6): names
    and values only; each engine reads them in its own way."""

    obsolete_sp: str
    reload_request: str
    request_before_lock: bool
    mmu_notifier: bool
    special_roots_have_sp: bool
    fault_lock: str
    unlock_between_gen_and_request: bool
    request_before_gen: bool
    zap_yield: bool
    serialized: bool
    respect_root_count: bool
    request: str
    generation: str
    # K4: where v5.18's is_obsolete_root() decides which roots the unload frees
    is_obsolete_root: str = "locked"
    # K6: the type of is_page_fault_stale()'s mmu_seq parameter (v5.16 to v6.2: int)
    mmu_seq: str = "unsigned_long"

    @staticmethod
    def of(variant: Variant) -> Knobs:
        """The knobs of ``variant``; raises ValueError for a missing or bad value."""
        for knob in KNOBS:
            if knob not in variant.knobs:
                raise ValueError(f"variant {variant.name!r} has no value for knob {knob!r}")
            reason = knob_error(knob, variant.knobs[knob])
            if reason:
                raise ValueError(reason)
        for knob in variant.knobs:
            if knob not in KNOBS:
                raise ValueError(f"unknown knob {knob!r}")
        k = variant.knobs
        return Knobs(
            obsolete_sp=str(k["stale_check.obsolete_sp"]),
            reload_request=str(k["stale_check.reload_request"]),
            request_before_lock=bool(k["stale_check.request_before_lock"]),
            mmu_notifier=bool(k["stale_check.mmu_notifier"]),
            special_roots_have_sp=bool(k["special_roots_have_sp"]),
            fault_lock=str(k["fault_lock"]),
            unlock_between_gen_and_request=bool(k["zap.unlock_between_gen_and_request"]),
            request_before_gen=bool(k["zap.request_before_gen"]),
            zap_yield=bool(k["zap.yield"]),
            serialized=bool(k["zap.serialized"]),
            respect_root_count=bool(k["zap.respect_root_count"]),
            request=str(k["request"]),
            generation=str(k["generation"]),
            is_obsolete_root=str(k["kvm_mmu_free_obsolete_roots.is_obsolete_root"]),
            mmu_seq=str(k["is_page_fault_stale.mmu_seq"]),
        )


# --- configuration (protocol.md section 6.1) -----------------------------------------------------

RootKind = Literal["sp", "special", "tdp"]
ROOT_KINDS: tuple[str, ...] = ("sp", "special", "tdp")


@dataclass(frozen=True)
class Config:
    """Who runs: the vCPUs' root kinds, the zappers, the notifier, and the bounds."""

    vcpus: tuple[str, ...] = ("special", "sp")
    zappers: int = 1
    notifier: bool = False
    max_zaps: int | None = 2
    max_invalidations: int | None = 1

    def actors(self) -> tuple[str, ...]:
        """Actor names in canonical order: vCPUs, zappers, notifier."""
        names = [f"vcpu{i}" for i in range(len(self.vcpus))]
        names += ["zapper", "zapper1"][: self.zappers]
        if self.notifier:
            names.append("notifier")
        return tuple(names)

    def as_dict(self) -> dict[str, object]:
        return {
            "vcpus": list(self.vcpus),
            "zappers": self.zappers,
            "notifier": self.notifier,
            "max_zaps": self.max_zaps,
            "max_invalidations": self.max_invalidations,
        }


def config_error(config: Config) -> str | None:
    """Why a configuration is not acceptable, or None."""
    if not config.vcpus:
        return "at least one vCPU is needed"
    for kind in config.vcpus:
        if kind not in ROOT_KINDS:
            return f"unknown root kind {kind!r} (sp, special, tdp)"
    if config.zappers not in (0, 1, 2):
        return "zappers must be 0, 1 or 2"
    for name in ("max_zaps", "max_invalidations"):
        bound = getattr(config, name)
        if bound is not None and (isinstance(bound, bool) or bound < 0):
            return f"{name} must be a whole number >= 0 or null"
    return None


# Limits of the numbers a user gives (options and files). Z3 takes its timeout in milliseconds as
# a 32-bit count (about 49 days); a bound beyond MAX_BOUND steps is a typo, not a plan.
MAX_TIMEOUT_S = 1_000_000
MAX_BOUND = 1000


def timeout_error(seconds: object) -> str | None:
    """Why ``seconds`` is not a timeout (a finite number of seconds, > 0, at most
    :data:`MAX_TIMEOUT_S`), or None."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return "expected a positive number of seconds"
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_TIMEOUT_S:
        return f"expected a positive number of seconds, at most {MAX_TIMEOUT_S}, got {seconds}"
    return None


def bound_error(bound: object, minimum: int = 1) -> str | None:
    """Why ``bound`` is not a bound in steps (``minimum`` to :data:`MAX_BOUND`), or None."""
    if isinstance(bound, bool) or not isinstance(bound, int):
        return "expected a whole number of steps"
    if not minimum <= bound <= MAX_BOUND:
        return f"expected a whole number >= {minimum} and <= {MAX_BOUND}, got {bound}"
    return None


def state_paths(config: Config) -> tuple[str, ...]:
    """Every state path of ``docs/protocol.md`` section 6.7 for ``config``."""
    paths = ["kvm.mmu_valid_gen", "kvm.mmu_lock", "kvm.mmu_notifier_count"]
    for i in range(len(config.vcpus)):
        paths += [f"vcpu{i}.{name}" for name in VCPU_PATHS]
    return tuple(paths)


VCPU_PATHS: tuple[str, ...] = (
    "mode",
    "request",
    "unload_due",
    "root.loaded",
    "root.gen",
    "root.obsolete",
    "root.invalid",
    "root.freed",
    "root.spte",
    "fault.stale",
)

# --- control paths (the step-by-step refinement check, kvmmu.refinement) -------------------------
# Section 6.7 names what a case may check; comparing one step of the implementation with the
# spec's transition relation needs the rest of section 6.2 too: program positions, lock holders,
# the fault locals, the ghost ``reloaded`` and the actors' counters. Names only: each engine
# answers (impl) or interprets (spec) them with its own logic. Values:
# ``kvm.mmu_lock.holders``: the writer, or the readers comma-separated in name order, or null;
# ``kvm.slots_lock``: the zapper holding it, or null; ``vcpuN.pc``: the vCPU's next fault step
# (``fault.lock``), null outside the fault path; ``vcpuN.fault.lock``: ``none``, ``read``,
# ``write``; ``zapperX.pc``: the zapper's next step (at the optional yield: ``zap.yield``);
# ``zapperX.position``: the 0-based index of that step in the zapper's program as section 6.3
# lists it (``zap.lock`` = 0), which tells the two ``zap.relock`` apart when both
# ``zap.unlock_between_gen_and_request`` and ``zap.yield`` are on;
# ``zapperX.zaps``, ``notifier.invalidations``: counts; ``notifier.state``: ``idle``, ``started``;
# ``kvm.mmu_notifier_seq.bit31``: the K6 ghost (section 6.11), false unless
# ``is_page_fault_stale.mmu_seq: int`` and some ``mn.end`` happened.
KVM_CONTROL_PATHS: tuple[str, ...] = (
    "kvm.mmu_lock.holders",
    "kvm.slots_lock",
    "kvm.mmu_notifier_seq.bit31",
)
VCPU_CONTROL_PATHS: tuple[str, ...] = (
    "pc",
    "reloaded",
    "fault.lock",
    "fault.seq_changed",
    "fault.pfn_stale",
)
ZAPPER_CONTROL_PATHS: tuple[str, ...] = ("pc", "position", "zaps")
NOTIFIER_CONTROL_PATHS: tuple[str, ...] = ("state", "invalidations")


def refinement_paths(config: Config) -> tuple[str, ...]:
    """The state paths of section 6.7 and the control paths above, for ``config``."""
    paths = [*state_paths(config), *KVM_CONTROL_PATHS]
    for i in range(len(config.vcpus)):
        paths += [f"vcpu{i}.{name}" for name in VCPU_CONTROL_PATHS]
    for zapper in ("zapper", "zapper1")[: config.zappers]:
        paths += [f"{zapper}.{name}" for name in ZAPPER_CONTROL_PATHS]
    if config.notifier:
        paths += [f"notifier.{name}" for name in NOTIFIER_CONTROL_PATHS]
    return tuple(paths)


def has_sp(knobs: Knobs, kind: str) -> bool:
    """Whether a root of ``kind`` has a shadow page (section 6.2): every kind but ``special``,
    which has one only with ``special_roots_have_sp`` (Lai Jiangshan's design)."""
    return kind != "special" or knobs.special_roots_have_sp


def required_covers(knobs: Knobs, config: Config) -> frozenset[str]:
    """The cover targets a proof must reach within its bound to be non-vacuous: all of them,
    except those the variant and the configuration rule out by construction, i.e. that no
    interleaving reaches at any depth (``docs/protocol.md`` section 6.5). Derived from the knobs
    and the vCPUs' root kinds, never from preset names; a rule about names and data, shared by
    every engine's report."""
    sps = [has_sp(knobs, kind) for kind in config.vcpus]
    zaps = config.zappers > 0 and config.max_zaps != 0
    # a vCPU without sp under an unguarded obsolete-sp test crashes at every fault.check
    survives = [sp or knobs.obsolete_sp != "unguarded" for sp in sps]
    part1 = knobs.obsolete_sp != "none" and any(sps)
    part2 = knobs.reload_request != "none" and any(
        not sp and (alive or knobs.request_before_lock)
        for sp, alive in zip(sps, survives, strict=True)
    )
    required = set(COVER_TARGETS)
    if not zaps:
        required -= {"zap.zap_obsolete", "enter.after_reload"}
    if not (zaps and (part1 or part2)):
        required.discard("retry.obsolete")
    notifier = config.notifier and config.max_invalidations != 0 and knobs.mmu_notifier
    if not (notifier and any(survives)):
        required.discard("retry.notifier")
    return frozenset(required)


@dataclass(frozen=True)
class Problem:
    """What to check: a variant under a configuration."""

    variant: Variant = field(default_factory=make_variant)
    config: Config = field(default_factory=Config)
