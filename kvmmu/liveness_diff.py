"""Differential check of the liveness engines (``docs/protocol.md`` §6.11): the spec's k-liveness
proof and lasso BMC against the implementation's fair-cycle search, on the same problem.

The verdicts must agree: ``violated`` on both sides, or ``proved`` (spec) against ``holds``
(impl, a search of the whole finite graph). A spec ``not_proved`` or ``unknown`` beside an impl
``holds`` is *inconclusive* and reported as such, never as agreement. Each engine's lasso is
also checked on the other engine: every step enabled, the loop closing and fair, the violation on
the loop. The implementation compares canonical states (dead fault locals reset), the spec its
whole frame, so an impl lasso is checked on the spec with its loop unrolled up to three times
(the same infinite run: after the first pass the dead locals have their loop values).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from impl.fair import check_lasso as impl_check
from impl.fair import find_lasso, reachable_graph
from impl.model import Model
from kvmmu.differential import one_knob_variants
from kvmmu.vocab import LIVENESS_PROPERTIES, PRESETS, Config, Problem, Step, make_variant
from spec.liveness import check_lasso as spec_check
from spec.liveness import prove_liveness

UNROLL = 3


@dataclass(frozen=True)
class LivenessComparison:
    """One property of one problem: the two verdicts, the lasso lengths, what disagrees."""

    problem: Problem
    prop: str
    fair: bool
    spec_verdict: str
    impl_verdict: str
    spec_lasso: tuple[int, int] | None  # (prefix, loop) lengths
    impl_lasso: tuple[int, int] | None
    mismatches: tuple[str, ...]
    seconds: float

    @property
    def agrees(self) -> bool:
        return not self.mismatches

    @property
    def conclusive(self) -> bool:
        return self.spec_verdict in ("proved", "violated", "vacuous")


def _spec_accepts(
    problem: Problem, prop: str, vcpu: str, prefix: Sequence[Step], loop: Sequence[Step], fair: bool
) -> str | None:
    why: str | None = None
    for n in range(1, UNROLL + 1):
        steps = tuple(prefix) + tuple(loop) * n
        start = len(prefix) + len(loop) * (n - 1)
        why = spec_check(problem.variant, problem.config, prop, vcpu, steps, start, fair)
        if why is None:
            return None
    return why


def compare_liveness(
    problem: Problem,
    props: Sequence[str] = LIVENESS_PROPERTIES,
    fair: bool = True,
    lasso_depth: int = 30,
    timeout_s: float = 300.0,
) -> list[LivenessComparison]:
    """Both engines on ``problem``, property by property."""
    import time

    graph = reachable_graph(Model.of(problem.variant, problem.config))
    out = []
    for prop in props:
        start = time.monotonic()
        impl = find_lasso(problem.variant, problem.config, prop, fair, graph)
        spec = prove_liveness(
            problem.variant,
            problem.config,
            prop,
            fair,
            depth=lasso_depth,
            cover_depth=lasso_depth,
            timeout_s=timeout_s,
        )
        impl_verdict = impl.verdict if impl.verdict == "violated" or impl.covered else "vacuous"
        mismatches: list[str] = []
        if spec.verdict == "violated" and impl.verdict != "violated":
            mismatches.append("the spec finds a lasso, the implementation none")
        if spec.verdict in ("proved", "vacuous") and impl.verdict == "violated":
            mismatches.append("the spec proves what the implementation refutes")
        if spec.verdict == "vacuous" and impl_verdict != "vacuous":
            mismatches.append("the spec finds the premise unreachable, the implementation not")
        if spec.verdict == "violated":
            why = impl_check(
                problem.variant, problem.config, prop, spec.vcpu, spec.trace, spec.loop_start, fair
            )
            if why is not None:
                mismatches.append(f"impl rejects the spec's lasso: {why}")
        if impl.verdict == "violated":
            why = _spec_accepts(problem, prop, impl.vcpu, impl.prefix, impl.loop, fair)
            if why is not None:
                mismatches.append(f"spec rejects the impl's lasso: {why}")
        out.append(
            LivenessComparison(
                problem,
                prop,
                fair,
                spec.verdict,
                impl_verdict,
                (len(spec.prefix), len(spec.loop)) if spec.verdict == "violated" else None,
                (len(impl.prefix), len(impl.loop)) if impl.verdict == "violated" else None,
                tuple(mismatches),
                time.monotonic() - start,
            )
        )
    return out


def configurations(max_vcpus: int, notifier: bool = True) -> list[Config]:
    """Every multiset of root kinds of 1 to ``max_vcpus`` vCPUs (liveness names actors, so the
    order within a multiset does not matter to a verdict, only to names)."""
    kinds = ("sp", "special", "tdp")
    configs: list[Config] = []
    combos: list[tuple[str, ...]] = [(k,) for k in kinds]
    if max_vcpus >= 2:
        combos += [(a, b) for i, a in enumerate(kinds) for b in kinds[i:]]
    for combo in combos:
        configs.append(Config(vcpus=combo, notifier=notifier))
    return configs


def sweep_liveness(
    max_vcpus: int,
    presets: Iterable[str] = tuple(PRESETS),
    notifier: bool = True,
    fair: bool = True,
    lasso_depth: int = 30,
    knobs: bool = False,
) -> list[LivenessComparison]:
    """Every preset (with ``knobs``: every variant of ``one_knob_variants``, each preset with
    one knob changed, which includes the livelock knobs K4 and K6) under every configuration of
    :func:`configurations`."""
    presets = tuple(presets)
    variants = one_knob_variants(presets) if knobs else [make_variant(preset) for preset in presets]
    out: list[LivenessComparison] = []
    for variant in variants:
        for config in configurations(max_vcpus, notifier):
            out += compare_liveness(Problem(variant, config), fair=fair, lasso_depth=lasso_depth)
    return out
