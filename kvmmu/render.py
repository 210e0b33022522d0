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


def lanes(
    config: Config,
    steps: Sequence[Step],
    states: Sequence[StateView],
    marks: Mapping[int, str] | None = None,
) -> str:
    """Per-actor lanes: one column per actor holding its step, then the state that matters
    (generation, ``mmu_lock``, each vCPU's mode, request bit and root).

    ``states[i]`` is the state after ``i`` steps (``states[0]`` the initial one); ``marks`` maps a
    1-based step index to a note (e.g. the invariant it violates).
    """
    actors = config.actors()
    vcpus = [a for a in actors if a.startswith("vcpu")]
    header = ["#", *actors, "gen", "lock"]
    for v in vcpus:
        header += [f"{v} mode", "req", f"{v} root"]
    header.append("note")
    rows: list[list[str]] = []
    for i, step in enumerate(steps, start=1):
        state = states[i] if i < len(states) else {}
        row = [str(i)] + [step.name if step.actor == a else "" for a in actors]
        row += [_show(state.get("kvm.mmu_valid_gen")), _show(state.get("kvm.mmu_lock"))]
        for v in vcpus:
            row += [
                _show(state.get(f"{v}.mode")),
                _show(state.get(f"{v}.request")),
                root_summary(state, v),
            ]
        row.append((marks or {}).get(i, ""))
        rows.append(row)
    return table(header, rows)


def replay_states(
    engine: Engine, problem: Problem, trace: Sequence[Step]
) -> tuple[Replay, list[dict[str, StateValue]]]:
    """Replay ``trace`` on ``engine`` and read every state path after every step, for display."""
    paths = state_paths(problem.config)
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
