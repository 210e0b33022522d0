"""``ImplEngine``: the implementation's answer to the conformance runner (``kvmmu.engine.Engine``).

It replays an explicit schedule (the third scheduler), judges every step, answers the state and
enabledness probes with the state paths of protocol.md 6.7, and describes each step's changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from impl.kernel import ZAPPER_NAMES
from impl.model import Model
from impl.state import Machine, RwLock
from kvmmu.engine import Probes, Replay, StateValue, StepRecord
from kvmmu.vocab import Config, Step, Variant

_ROOT_FIELDS = ("gen", "obsolete", "invalid", "freed", "spte")
_PATH_RE = re.compile(
    r"^(kvm\.(mmu_valid_gen|mmu_lock|mmu_lock\.holders|mmu_notifier_count|slots_lock"
    r"|mmu_notifier_seq\.bit31)"
    r"|vcpu(0|[1-9][0-9]*)\.(mode|pc|request|unload_due|reloaded|root\.loaded"
    r"|root\.(gen|obsolete|invalid|freed|spte)|fault\.(stale|lock|seq_changed|pfn_stale))"
    r"|zapper1?\.(pc|zaps)|notifier\.(state|invalidations))$"
)


def _holders(lock: RwLock) -> str | None:
    """Who holds ``mmu_lock``: the writer, or the readers (comma-separated), or None."""
    if lock.writer is not None:
        return lock.writer
    return ",".join(sorted(lock.readers)) or None


def state_paths(model: Model, m: Machine) -> dict[str, StateValue]:
    """Every state path of ``m``: those of protocol.md 6.7 and a few more for the change text
    (program positions, lock holders, the other fault locals, zaps and invalidations done).
    Root fields of a vCPU with no root are None."""
    kvm = m.kvm
    out: dict[str, StateValue] = {
        "kvm.mmu_valid_gen": kvm.mmu_valid_gen,
        "kvm.mmu_lock": kvm.mmu_lock.mode,
        "kvm.mmu_lock.holders": _holders(kvm.mmu_lock),
        "kvm.mmu_notifier_count": kvm.mmu_notifier_count,
        "kvm.slots_lock": kvm.slots_lock,
        "kvm.mmu_notifier_seq.bit31": kvm.mmu_notifier_seq_bit31,
    }
    for i, v in enumerate(m.vcpus):
        name = f"vcpu{i}"
        out[f"{name}.mode"] = v.mode
        out[f"{name}.pc"] = v.pc or None
        out[f"{name}.request"] = v.request
        out[f"{name}.unload_due"] = v.unload_due
        out[f"{name}.reloaded"] = v.reloaded
        out[f"{name}.root.loaded"] = v.root is not None
        for f in _ROOT_FIELDS:
            out[f"{name}.root.{f}"] = None if v.root is None else getattr(v.root, f)
        # the verdict of is_page_fault_stale() exists from fault.check until fault.unlock
        checked = v.mode == "fault" and v.pc in ("fault.map", "fault.unlock")
        out[f"{name}.fault.stale"] = v.stale if checked else None
        out[f"{name}.fault.lock"] = v.lock
        out[f"{name}.fault.seq_changed"] = v.seq_changed
        out[f"{name}.fault.pfn_stale"] = v.pfn_stale
    for i, z in enumerate(m.zappers):
        out[f"{ZAPPER_NAMES[i]}.pc"] = model.params.zap_program[z.pc]
        out[f"{ZAPPER_NAMES[i]}.zaps"] = z.zaps
    if m.notifier is not None:
        out["notifier.state"] = "started" if m.notifier.started else "idle"
        out["notifier.invalidations"] = m.notifier.invalidations
    return out


def read_path(model: Model, m: Machine, path: str) -> StateValue:
    """The value of one state path; None when it does not exist here (no root, no such vCPU);
    ValueError when it is not a state path at all."""
    if not _PATH_RE.match(path):
        raise ValueError(f"unknown state path {path!r} (see docs/protocol.md section 6.7)")
    return state_paths(model, m).get(path)


def _show(value: StateValue) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def describe_changes(model: Model, before: Machine, after: Machine) -> str:
    """A short text of what changed, e.g. ``kvm.mmu_valid_gen 0→1; vcpu0.root.obsolete
    false→true``. A root that appears or goes is one item (``vcpu0.root loaded (gen 0)``)."""
    old, new = state_paths(model, before), state_paths(model, after)
    items: list[str] = []
    for path, value in new.items():
        was = old.get(path)
        if was == value:
            continue
        vcpu, _, rest = path.partition(".")
        if rest == "root.loaded":
            gen = new[f"{vcpu}.root.gen"]
            items.append(f"{vcpu}.root loaded (gen {gen})" if value else f"{vcpu}.root dropped")
            continue
        if rest.startswith("root.") and (was is None or value is None):
            continue  # covered by the loaded/dropped item
        items.append(f"{path} {_show(was)}→{_show(value)}")
    return "; ".join(items)


_NO_PROBES = Probes()


class ImplEngine:
    """The Python implementation as a ``kvmmu.engine.Engine``."""

    name = "impl"

    def check_lasso(
        self,
        variant: Variant,
        config: Config,
        prop: str,
        vcpu: str,
        schedule: Sequence[Step],
        loop: int,
        fairness: bool = True,
    ) -> str | None:
        """Why ``schedule`` is not a (fair) lasso refuting ``prop`` for ``vcpu``, looping back to
        the state after ``loop`` steps, or None when it is one (``impl.fair.check_lasso``)."""
        from impl.fair import check_lasso

        return check_lasso(variant, config, prop, vcpu, schedule, loop, fairness)

    def replay(
        self,
        variant: Variant,
        config: Config,
        schedule: Sequence[Step],
        probes: Probes = _NO_PROBES,
    ) -> Replay:
        """Run ``schedule`` step by step from the initial state. The replay stops at the first
        step that is not enabled (``Replay.blocked``, 1-based); probes are answered for every
        point up to the last executed step. ValueError for a configuration or variant the
        model cannot run, or an unknown state path in the probes."""
        model = Model.of(variant, config)
        m = model.initial()
        records: list[StepRecord] = []
        first: dict[str, int] = {}
        states: dict[int, Mapping[str, StateValue]] = {}
        enabled: dict[int, Mapping[Step, bool]] = {}
        blocked: int | None = None

        def answer(n: int, m: Machine) -> None:
            if n in probes.state:
                states[n] = {path: read_path(model, m, path) for path in probes.state[n]}
            if n in probes.enabled:
                enabled[n] = {step: model.run(m, step) is not None for step in probes.enabled[n]}

        answer(0, m)
        for n, step in enumerate(schedule, 1):
            outcome = model.execute(m, step)
            if outcome is None:
                blocked = n
                break
            for name in outcome.violations:
                first.setdefault(name, n)
            records.append(
                StepRecord(
                    index=n,
                    step=step,
                    violations=outcome.violations,
                    covers=outcome.covers,
                    changes=describe_changes(model, m, outcome.machine),
                )
            )
            m = outcome.machine
            answer(n, m)
        return Replay(
            steps=tuple(records),
            blocked=blocked,
            first_violation=first,
            state=states,
            enabled=enabled,
        )
