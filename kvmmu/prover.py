"""One front for the Z3 spec's engines: bounded model checking (``bmc``) and k-induction
(``kind``), giving one five-way verdict per invariant.

Verdicts: ``proved`` (for all depths, by k-induction), ``violated`` (a shortest counterexample),
``holds`` (no violation up to the depth: what ``bmc`` can say), ``not_inductive`` (k-induction
found a counterexample to induction that is not known to be reachable: not a violation),
``vacuous`` (holds or proved, but a required cover target is unreachable within the bound, so
the result proves nothing), ``unknown`` (the solver gave up or timed out: never a pass), ``error``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kvmmu.engine import Progress
from kvmmu.vocab import Config, Step, Variant
from spec.unroll import SEED as UNROLL_SEED

ENGINES = ("bmc", "kind")
SEED = UNROLL_SEED  # the solvers' random seed, as the spec sets it: runs are reproducible

# exit status of each verdict (README, "Exit status"); for several verdicts the worst one counts
EXIT_STATUS: Mapping[str, int] = {
    "proved": 0,
    "holds": 0,
    "violated": 1,
    "unknown": 3,
    "error": 3,
    "vacuous": 4,
    "not_inductive": 5,
    "not_proved": 5,  # a liveness proof that did not close, and no lasso found
}
# how bad each exit status is, worst first
_SEVERITY = (1, 3, 4, 5, 6, 0)
EXIT_HOLDS_ONLY = 6  # 'holds' to a depth where k-induction was asked for all depths


@dataclass(frozen=True)
class Verdict:
    """An engine's answer for one invariant. ``bound`` is the BMC depth or the largest k tried;
    ``k`` the k at which induction closed; ``cover`` says which cover targets were reached
    within the bound and ``required`` which of them must be."""

    invariant: str
    verdict: str
    engine: str
    bound: int
    seconds: float
    z3: str = ""
    trace: tuple[Step, ...] = ()
    k: int | None = None
    lemmas: tuple[str, ...] = ()
    cover: Mapping[str, bool | None] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    reason: str = ""
    reached: int | None = None  # an unknown: the depth up to which every trace was checked
    loop: int | None = None  # a liveness counterexample: the index where its loop starts

    @property
    def exit_status(self) -> int:
        if self.verdict == "holds" and self.engine == "kind":
            return EXIT_HOLDS_ONLY
        return EXIT_STATUS[self.verdict]


def worst_status(statuses: Sequence[int]) -> int:
    """The exit status of a run: the most severe of its verdicts' statuses (0 when none)."""
    for status in _SEVERITY:
        if status in statuses:
            return status
    return 0


def check(
    variant: Variant,
    config: Config,
    invariants: Sequence[str],
    engine: str,
    bound: int,
    timeout_s: float,
    progress: Progress | None = None,
) -> list[Verdict]:
    """Ask the spec's ``engine`` about ``invariants``; one Verdict each, in order. ``progress``
    hears how far the engine got (``kvmmu.engine.Progress``)."""
    if engine == "bmc":
        return _bmc(variant, config, invariants, bound, timeout_s, progress)
    if engine == "kind":
        return _kind(variant, config, invariants, bound, timeout_s, progress)
    raise ValueError(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")


def _bmc(
    variant: Variant,
    config: Config,
    invariants: Sequence[str],
    depth: int,
    timeout_s: float,
    progress: Progress | None,
) -> list[Verdict]:
    from spec import bmc, vacuous

    return [
        Verdict(
            invariant=r.invariant,
            verdict="vacuous" if r.verdict == "holds" and vacuous(r) else r.verdict,
            engine="bmc",
            bound=depth,
            seconds=r.seconds,
            z3=r.z3_version,
            trace=r.trace,
            cover=r.cover,
            required=r.required_covers,
            reason=r.reason,
            # BMC gave up at depth r.depth: every shallower depth was answered unsat
            reached=max(0, r.depth - 1) if r.verdict == "unknown" else None,
        )
        for r in bmc(variant, config, invariants, depth, timeout_s, progress)
    ]


def _kind(
    variant: Variant,
    config: Config,
    invariants: Sequence[str],
    max_k: int,
    timeout_s: float,
    progress: Progress | None,
) -> list[Verdict]:
    from spec.induction import prove, vacuous

    return [
        Verdict(
            invariant=r.invariant,
            verdict="vacuous" if vacuous(r) else r.verdict,
            engine="kind",
            bound=r.depth if r.verdict == "holds" else max_k,
            seconds=r.seconds,
            z3=r.z3_version,
            trace=r.trace,
            k=r.k,
            lemmas=tuple(r.lemmas),
            cover=r.cover,
            required=r.required_covers,
            reason=r.reason,
            # the base case gave up at depth r.depth (or the lemmas gave up: depth 0)
            reached=max(0, r.depth - 1) if r.verdict == "unknown" else None,
        )
        for r in prove(
            variant, config, invariants, max_k=max_k, timeout_s=timeout_s, progress=progress
        )
    ]
