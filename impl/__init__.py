"""impl: the obsolete-root protocol as ordinary Python (docs/protocol.md section 6).

Independent of ``spec``: the two share only ``kvmmu.vocab`` and ``kvmmu.engine``.

- ``ImplEngine``: replays explicit schedules for the conformance runner.
- ``explore``: exhaustive breadth-first search, shortest violating trace per invariant.
- ``random_trace``: a seeded random schedule.
- ``enabled_steps``: what may run after a schedule.
"""

from impl.engine import ImplEngine, read_path, state_paths
from impl.model import Model, Outcome
from impl.search import SearchResult, Trace, enabled_steps, explore, random_trace

__all__ = [
    "ImplEngine",
    "Model",
    "Outcome",
    "SearchResult",
    "Trace",
    "enabled_steps",
    "explore",
    "random_trace",
    "read_path",
    "state_paths",
]
