"""Plain-text rendering of traces: tables and per-actor lanes.

Pure functions from data (steps, state-path dictionaries of ``docs/protocol.md`` section 6.7) to
strings; no protocol logic. Used by the CLI for both engines' answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kvmmu.engine import Engine, Probes, Replay, StateValue
from kvmmu.vocab import Config, Problem, Step, state_paths

StateView = Mapping[str, object]

# the root fields worth a glance in a lane, and their short labels
ROOT_FLAGS = (("obsolete", "obs"), ("invalid", "inv"), ("freed", "FREED"), ("spte", "spte"))

# The state an invariant reads beyond what every trace shows (generation, lock, each vCPU's
# mode, request and root): (label, path) of the VM, then (label, path suffix) of each vCPU.
# no_stale_pfn reads the mmu notifier's count and, per vCPU, whether the notifier sequence
# changed since fault.snapshot and whether the pfn of fault.faultin was invalidated since.
READS: Mapping[str, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]] = {
    "no_stale_pfn": (
        (("mn count", "kvm.mmu_notifier_count"),),
        (("seq chg", "fault.seq_changed"), ("pfn stale", "fault.pfn_stale")),
    ),
}


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A left-aligned text table with a rule under the header."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _show(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def root_summary(state: StateView, vcpu: str) -> str:
    """``g1 inv obs freed spte`` for a loaded root, ``-`` without one."""
    if not state.get(f"{vcpu}.root.loaded"):
        return "-"
    flags = [f"g{_show(state.get(f'{vcpu}.root.gen'))}"]
    for name, label in ROOT_FLAGS:
        if state.get(f"{vcpu}.root.{name}"):
            flags.append(label)
    return " ".join(flags)


def actor_label(config: Config, actor: str) -> str:
    """``vcpu0 (special)`` for a vCPU (its root kind), the actor's name otherwise."""
    if actor.startswith("vcpu") and actor[4:].isdigit() and int(actor[4:]) < len(config.vcpus):
        return f"{actor} ({config.vcpus[int(actor[4:])]})"
    return actor


def read_paths(config: Config, invariants: Sequence[str]) -> tuple[str, ...]:
    """The extra state paths that :func:`lanes` shows for ``invariants`` (see ``READS``)."""
    paths: list[str] = []
    for invariant in invariants:
        vm, per_vcpu = READS.get(invariant, ((), ()))
        paths += [path for _, path in vm]
        for i in range(len(config.vcpus)):
            paths += [f"vcpu{i}.{suffix}" for _, suffix in per_vcpu]
    return tuple(dict.fromkeys(paths))


def lanes(
    config: Config,
    steps: Sequence[Step],
    states: Sequence[StateView],
    marks: Mapping[int, str] | None = None,
    invariants: Sequence[str] = (),
    actors: Sequence[str] | None = None,
) -> str:
    """Per-actor lanes: one column per actor holding its step (a vCPU's header names its root
    kind), then the state that matters (generation, ``mmu_lock``, each vCPU's mode, request bit
    and root), and the state that ``invariants`` read besides (``READS``: the notifier's count
    and sequence for ``no_stale_pfn``).

    ``states[i]`` is the state after ``i`` steps (``states[0]`` the initial one); ``marks`` maps a
    1-based step index to a note (e.g. the invariant it violates). ``actors``: the lanes, by
    default ``config.actors()`` (the parametric abstraction adds its environment).
    """
    actors = list(config.actors() if actors is None else actors)
    vcpus = [a for a in config.actors() if a.startswith("vcpu")]
    vm_reads: list[tuple[str, str]] = []
    vcpu_reads: list[tuple[str, str]] = []
    for invariant in invariants:
        vm, per_vcpu = READS.get(invariant, ((), ()))
        vm_reads += [r for r in vm if r not in vm_reads]
        vcpu_reads += [r for r in per_vcpu if r not in vcpu_reads]
    header = ["#", *(actor_label(config, a) for a in actors), "gen", "lock"]
    header += [label for label, _ in vm_reads]
    for v in vcpus:
        header += [f"{v} mode", "req", f"{v} root", *(label for label, _ in vcpu_reads)]
    header.append("note")
    rows: list[list[str]] = []
    for i, step in enumerate(steps, start=1):
        state = states[i] if i < len(states) else {}
        row = [str(i)] + [step.name if step.actor == a else "" for a in actors]
        row += [_show(state.get("kvm.mmu_valid_gen")), _show(state.get("kvm.mmu_lock"))]
        row += [_show(state.get(path)) for _, path in vm_reads]
        for v in vcpus:
            row += [
                _show(state.get(f"{v}.mode")),
                _show(state.get(f"{v}.request")),
                root_summary(state, v),
                *(_show(state.get(f"{v}.{suffix}")) for _, suffix in vcpu_reads),
            ]
        row.append((marks or {}).get(i, ""))
        rows.append(row)
    return table(header, rows)


def replay_states(
    engine: Engine, problem: Problem, trace: Sequence[Step], invariants: Sequence[str] = ()
) -> tuple[Replay, list[dict[str, StateValue]]]:
    """Replay ``trace`` on ``engine`` and read every state path after every step, and those
    that ``invariants`` read (:func:`read_paths`), for display."""
    paths = (*state_paths(problem.config), *read_paths(problem.config, invariants))
    probes = Probes(state={i: paths for i in range(len(trace) + 1)})
    replay = engine.replay(problem.variant, problem.config, trace, probes)
    states = [dict(replay.state.get(i, {})) for i in range(len(trace) + 1)]
    return replay, states


def violation_marks(replay: Replay) -> dict[int, str]:
    """Step index -> the invariants it violates first, for the ``note`` column of lanes."""
    marks: dict[int, list[str]] = {}
    for invariant, index in replay.first_violation.items():
        marks.setdefault(index, []).append(f"VIOLATES {invariant}")
    return {i: ", ".join(sorted(names)) for i, names in marks.items()}
