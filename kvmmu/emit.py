"""Counterexample to conformance case: write a trace as a YAML case of format ``kvmmu-case/1``.

The expectation written is what the engine that replayed the trace says (every invariant's first
violation), so the case pins that engine's answer; the conformance suite then holds the other
engine to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from kvmmu.engine import Replay
from kvmmu.vocab import Problem, Step, variant_spec

CASE_FORMAT = "kvmmu-case/1"


def case_document(
    problem: Problem, trace: Sequence[Step], replay: Replay, description: str
) -> dict[str, object]:
    """The case as plain data, in the key order of ``conformance/FORMAT.md``."""
    return {
        "format": CASE_FORMAT,
        "description": description,
        "variant": variant_spec(problem.variant),
        "config": problem.config.as_dict(),
        "schedule": [str(step) for step in trace],
        "expect": {"violated": dict(sorted(replay.first_violation.items()))},
    }


def case_text(document: dict[str, object]) -> str:
    """``document`` as the YAML text of a case file (written by :mod:`kvmmu.outputs`)."""
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=100)
