"""Conformance cases, format ``kvmmu-case/1`` (``conformance/FORMAT.md``): loading and checking.

A case is data only: a variant, a configuration, a schedule and what must happen. Everything a
case says is checked here against the shared vocabulary (``kvmmu.vocab``), so that a typo is an
:class:`~kvmmu.yamlio.InputError` naming file, line and field, never a silently passing case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kvmmu.engine import StateValue
from kvmmu.vocab import (
    COVER_TARGETS,
    INVARIANTS,
    LIVENESS_PROPERTIES,
    VCPU_PATHS,
    Config,
    Step,
    Variant,
    actor_kind,
    state_paths,
)
from kvmmu.yamlio import (
    Document,
    InputError,
    as_bool,
    as_int,
    as_list,
    as_mapping,
    as_str,
    child_path,
    item_path,
    load_yaml,
    parse_config,
    parse_variant,
    shown,
    type_name,
)

FORMAT = "kvmmu-case/1"

TOP_REQUIRED = ("format", "description", "variant", "schedule", "expect")
TOP_OPTIONAL = ("config",)
EXPECT_REQUIRED = ("violated",)
EXPECT_OPTIONAL = ("blocked", "enabled", "not_enabled", "state", "covers", "lasso")
LASSO_REQUIRED = ("property", "vcpu", "loop")
LASSO_OPTIONAL = ("fairness",)


@dataclass(frozen=True)
class EnabledCheck:
    """After ``after`` executed steps, ``step`` must (``enabled``) or must not be enabled."""

    after: int
    step: Step
    enabled: bool


@dataclass(frozen=True)
class StateCheck:
    """After ``after`` executed steps, the state path ``path`` must be ``value``."""

    after: int
    path: str
    value: StateValue


@dataclass(frozen=True)
class LassoCheck:
    """The schedule is a lasso refuting ``prop`` for ``vcpu`` (``docs/protocol.md`` §6.11): the
    state after the whole schedule is the state after ``loop`` steps, and the steps after those
    ``loop`` repeat forever as a (``fairness``: weakly fair) run."""

    prop: str
    vcpu: str
    loop: int
    fairness: bool = True


@dataclass(frozen=True)
class Expectation:
    """What must happen. ``violated``: invariant -> 1-based step of its first violation (every
    other invariant must hold); ``blocked``: the last schedule step must not be enabled."""

    violated: Mapping[str, int]
    blocked: int | None = None
    enabled: tuple[EnabledCheck, ...] = ()
    state: tuple[StateCheck, ...] = ()
    covers: tuple[str, ...] = ()
    lasso: LassoCheck | None = None


@dataclass(frozen=True)
class Case:
    """One loaded case. ``id`` is the file name without ``.yaml``; ``topic`` its folder."""

    id: str
    path: Path
    topic: str
    description: str
    variant: Variant
    config: Config
    schedule: tuple[Step, ...]
    expect: Expectation

    @property
    def executed(self) -> int:
        """How many schedule steps run: all of them, or those before the blocked one."""
        blocked = self.expect.blocked
        return len(self.schedule) if blocked is None else blocked - 1


def load_case(path: Path | str) -> Case:
    """Load and check one case file; raises :class:`InputError`."""
    doc = load_yaml(path)  # before Path(): Path("") would be the working directory
    return parse_case(doc, Path(path))


def parse_case(doc: Document, path: Path) -> Case:
    top = as_mapping(doc, "", doc.data, TOP_REQUIRED, TOP_OPTIONAL)
    fmt = as_str(doc, "format", top["format"])
    if fmt != FORMAT:
        raise doc.error("format", f"unsupported format {fmt!r} (this loader reads {FORMAT})")
    description = as_str(doc, "description", top["description"]).strip()
    if not description:
        raise doc.error("description", "the description is empty: say what the case shows")
    variant = parse_variant(doc, "variant", top["variant"])
    config = parse_config(doc, "config", top.get("config", {}))
    schedule = parse_schedule(doc, "schedule", top["schedule"], config)
    expect = parse_expect(doc, "expect", top["expect"], config, schedule)
    return Case(
        id=path.stem,
        path=path,
        topic=path.parent.name,
        description=description,
        variant=variant,
        config=config,
        schedule=schedule,
        expect=expect,
    )


def parse_step(doc: Document, path: str, value: object, config: Config) -> Step:
    """``"ACTOR STEP"`` with an actor that exists in ``config`` and a step of its kind."""
    text = as_str(doc, path, value)
    try:
        step = Step.parse(text)
    except ValueError as exc:
        raise doc.error(path, str(exc)) from exc
    actors = config.actors()
    if step.actor not in actors:
        raise doc.error(
            path,
            f"actor {step.actor!r} is not in the configuration (its actors: {', '.join(actors)})",
        )
    return step


def parse_schedule(doc: Document, path: str, value: object, config: Config) -> tuple[Step, ...]:
    items = as_list(doc, path, value)
    if not items:
        raise doc.error(path, "the schedule is empty")
    return tuple(
        parse_step(doc, item_path(path, index), item, config) for index, item in enumerate(items)
    )


# --- expect --------------------------------------------------------------------------------------


def parse_expect(
    doc: Document, path: str, value: object, config: Config, schedule: tuple[Step, ...]
) -> Expectation:
    fields = as_mapping(doc, path, value, EXPECT_REQUIRED, EXPECT_OPTIONAL)
    blocked = None
    if "blocked" in fields:
        blocked = _blocked(doc, child_path(path, "blocked"), fields["blocked"], schedule)
    # Steps after a blocked one never run, so nothing can be asked about them.
    executed = len(schedule) if blocked is None else blocked - 1
    violated = _violated(doc, child_path(path, "violated"), fields["violated"], executed, blocked)
    enabled: list[EnabledCheck] = []
    for key, must in (("enabled", True), ("not_enabled", False)):
        if key in fields:
            enabled += _enabled(doc, child_path(path, key), fields[key], must, config, executed)
    state: tuple[StateCheck, ...] = ()
    if "state" in fields:
        state = _state(doc, child_path(path, "state"), fields["state"], config, executed)
    covers: tuple[str, ...] = ()
    if "covers" in fields:
        covers = _covers(doc, child_path(path, "covers"), fields["covers"])
    lasso = None
    if "lasso" in fields:
        if blocked is not None:
            raise doc.error(child_path(path, "lasso"), "a lasso runs every step: not with blocked")
        lasso = _lasso(doc, child_path(path, "lasso"), fields["lasso"], config, len(schedule))
    return Expectation(violated, blocked, tuple(enabled), state, covers, lasso)


def _lasso(doc: Document, path: str, value: object, config: Config, steps: int) -> LassoCheck:
    fields = as_mapping(doc, path, value, LASSO_REQUIRED, LASSO_OPTIONAL)
    prop = as_str(doc, child_path(path, "property"), fields["property"])
    if prop not in LIVENESS_PROPERTIES:
        known = ", ".join(LIVENESS_PROPERTIES)
        raise doc.error(child_path(path, "property"), f"unknown property {prop!r} (known: {known})")
    vcpu = as_str(doc, child_path(path, "vcpu"), fields["vcpu"])
    if vcpu not in [f"vcpu{i}" for i in range(len(config.vcpus))]:
        raise doc.error(child_path(path, "vcpu"), f"no {vcpu!r} in this configuration")
    loop = as_int(doc, child_path(path, "loop"), fields["loop"], minimum=0)
    if loop >= steps:
        raise doc.error(
            child_path(path, "loop"), f"the loop must start before the last step ({steps}): {loop}"
        )
    fairness = as_bool(doc, child_path(path, "fairness"), fields.get("fairness", True))
    return LassoCheck(prop, vcpu, loop, fairness)


def _blocked(doc: Document, path: str, value: object, schedule: tuple[Step, ...]) -> int:
    index = as_int(doc, path, value, minimum=1)
    if index != len(schedule):
        # The replay stops at the blocked step: any step after it would be dead text.
        raise doc.error(
            path,
            f"the blocked step must be the last schedule step ({len(schedule)}), got {index}",
        )
    return index


def _step_index(doc: Document, path: str, value: object, executed: int, blocked: int | None) -> int:
    index = as_int(doc, path, value, minimum=1)
    if index > executed:
        if blocked is not None and index == blocked:
            raise doc.error(path, f"step {index} is the blocked step, it never runs")
        raise doc.error(
            path, f"step {index} is past the last executed step ({executed}) of the schedule"
        )
    return index


def _violated(
    doc: Document, path: str, value: object, executed: int, blocked: int | None
) -> dict[str, int]:
    if value is None:  # ``violated:`` with nothing after it reads as "none"
        return {}
    if not isinstance(value, dict):
        raise doc.error(path, f"expected a mapping of invariant: step, got {type_name(value)}")
    fields: dict[str, object] = value
    for name in fields:
        if name not in INVARIANTS:
            raise doc.error(
                child_path(path, name),
                f"unknown invariant {name!r} (known: {', '.join(INVARIANTS)})",
            )
    return {
        name: _step_index(doc, child_path(path, name), index, executed, blocked)
        for name, index in fields.items()
    }


def _after(doc: Document, path: str, value: object, executed: int) -> int:
    after = as_int(doc, path, value, minimum=0)
    if after > executed:
        raise doc.error(
            path, f"after {after} steps is past the last executed step ({executed}) of the schedule"
        )
    return after


def _enabled(
    doc: Document, path: str, value: object, must: bool, config: Config, executed: int
) -> list[EnabledCheck]:
    checks = []
    for index, item in enumerate(as_list(doc, path, value)):
        sub = item_path(path, index)
        fields = as_mapping(doc, sub, item, required=("after", "step"))
        after = _after(doc, child_path(sub, "after"), fields["after"], executed)
        step = parse_step(doc, child_path(sub, "step"), fields["step"], config)
        checks.append(EnabledCheck(after, step, must))
    return checks


def _state(
    doc: Document, path: str, value: object, config: Config, executed: int
) -> tuple[StateCheck, ...]:
    known = state_paths(config)
    checks: list[StateCheck] = []
    seen: set[tuple[int, str]] = set()
    for index, item in enumerate(as_list(doc, path, value)):
        sub = item_path(path, index)
        if not isinstance(item, dict):
            raise doc.error(
                sub, f"expected a mapping with 'after' and paths, got {type_name(item)}"
            )
        if "after" not in item:
            raise doc.error(sub, "missing required key 'after'")
        after = _after(doc, child_path(sub, "after"), item["after"], executed)
        paths = [key for key in item if key != "after"]
        if not paths:
            raise doc.error(sub, "no state path to check (e.g. kvm.mmu_valid_gen: 1)")
        for state_path in paths:
            field = child_path(sub, state_path)
            if state_path not in known:
                raise doc.error(field, _unknown_path(state_path, config))
            if (after, state_path) in seen:
                raise doc.error(field, f"{state_path} is already checked after {after} steps")
            seen.add((after, state_path))
            checks.append(
                StateCheck(
                    after, state_path, _state_value(doc, field, state_path, item[state_path])
                )
            )
    return tuple(checks)


def _unknown_path(state_path: str, config: Config) -> str:
    head, _, rest = state_path.partition(".")
    vcpus = [f"vcpu{i}" for i in range(len(config.vcpus))]
    if head in vcpus:
        return f"unknown vCPU state path {rest!r} (known: {', '.join(VCPU_PATHS)})"
    if actor_kind(head) == "vcpu":
        return f"{head} is not in the configuration (its vCPUs: {', '.join(vcpus)})"
    known = [p for p in state_paths(config) if p.startswith("kvm.")]
    return (
        f"unknown state path {state_path!r} (known: {', '.join(known)}, "
        "and vcpuN.PATH; see docs/protocol.md section 6.7)"
    )


# The type of each state path of docs/protocol.md section 6.7, by its last part. Root fields and
# the fault verdict do not exist without a root or a fault: an engine answers null, and a case
# may expect null there.
_INT_PATHS = ("mmu_valid_gen", "mmu_notifier_count")
_ENUMS: Mapping[str, tuple[str, ...]] = {
    "mmu_lock": ("free", "write", "read"),
    "mode": ("outside", "guest", "fault", "crashed"),
}
_BOOL_PATHS = ("request", "unload_due", "root.loaded")
_OPTIONAL_BOOL_PATHS = ("root.obsolete", "root.invalid", "root.freed", "root.spte", "fault.stale")


def _state_value(doc: Document, field: str, state_path: str, value: object) -> StateValue:
    _, _, name = state_path.partition(".")
    if name in _INT_PATHS:
        return as_int(doc, field, value, minimum=0)
    if name == "root.gen":
        return None if value is None else as_int(doc, field, value, minimum=0)
    if name in _ENUMS:
        allowed = _ENUMS[name]
        if value not in allowed or not isinstance(value, str):
            raise doc.error(field, f"expected one of {', '.join(allowed)}, got {shown(value)}")
        return value
    if name in _BOOL_PATHS:
        return as_bool(doc, field, value)
    if name in _OPTIONAL_BOOL_PATHS:
        return None if value is None else as_bool(doc, field, value)
    raise doc.error(field, f"no type known for state path {state_path!r}")  # vocab grew a path


def _covers(doc: Document, path: str, value: object) -> tuple[str, ...]:
    targets: list[str] = []
    for index, item in enumerate(as_list(doc, path, value)):
        sub = item_path(path, index)
        target = as_str(doc, sub, item)
        if target not in COVER_TARGETS:
            raise doc.error(
                sub, f"unknown cover target {target!r} (known: {', '.join(COVER_TARGETS)})"
            )
        if target in targets:
            raise doc.error(sub, f"cover target {target!r} is listed twice")
        targets.append(target)
    return tuple(targets)


__all__ = [
    "FORMAT",
    "Case",
    "EnabledCheck",
    "Expectation",
    "InputError",
    "StateCheck",
    "load_case",
    "parse_case",
]
