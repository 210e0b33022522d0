"""A heartbeat on stderr for long runs: what is reached (a depth, states, cases), the rate and
the elapsed time, drawn by ``tqdm``. Off when stderr is not a terminal (a pipe, a CI log, a
test), unless forced, so that nothing but the result is ever captured; stdout is never used.
"""

from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import TextIO

from tqdm import tqdm

FORCE_ENV = "KVMMU_PROGRESS"  # "1": a heartbeat even when stderr is not a terminal


def wanted(force: bool = False, stream: TextIO | None = None) -> bool:
    """Whether to draw a heartbeat: forced, or asked by ``KVMMU_PROGRESS=1``, or stderr is a
    terminal."""
    out = sys.stderr if stream is None else stream
    return force or os.environ.get(FORCE_ENV) == "1" or out.isatty()


class Heartbeat:
    """One line on stderr, redrawn in place, gone when the run ends. ``total``: the number of
    units (depths, cases, comparisons) when known; ``unit``: what is counted (its rate is shown).
    A disabled heartbeat costs nothing and draws nothing."""

    def __init__(
        self,
        description: str,
        total: int | None = None,
        unit: str = "it",
        *,
        force: bool = False,
        stream: TextIO | None = None,
        mininterval: float = 0.5,
    ) -> None:
        out = sys.stderr if stream is None else stream
        self.enabled = wanted(force, out)
        self._bar = tqdm(
            total=total,
            desc=description,
            unit=unit,
            file=out,
            disable=not self.enabled,
            leave=False,
            dynamic_ncols=True,
            mininterval=mininterval,  # seconds between redraws
        )

    def advance(self, n: int = 1, note: str = "") -> None:
        """``n`` more units done; ``note`` says where the run is (e.g. ``obligation x``)."""
        if note:
            self._bar.set_postfix_str(note, refresh=False)
        self._bar.update(n)

    def at(self, value: int, note: str = "") -> None:
        """``value`` units reached in all (a depth, a number of states)."""
        if note:
            self._bar.set_postfix_str(note, refresh=False)
        self._bar.update(value - self._bar.n)

    def describe(self, description: str) -> None:
        self._bar.set_description_str(description, refresh=False)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
