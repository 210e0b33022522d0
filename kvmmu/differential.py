"""Differential check: the Z3 spec's bounded model checking against the implementation's
exhaustive search, on the same variant, configuration and bound.

For every invariant both must agree on the verdict (violated within the bound, or not) and on the
length of a shortest counterexample. The traces themselves may differ (several shortest ones can
exist), so each engine's trace is also replayed on the *other* engine, which must see the same
violation at the same step.

Two sweeps: the presets on mixed configurations (:func:`sweep`), and every knob value, one knob
changed at a time from each preset (:func:`knob_sweep`), on configurations chosen so that every
knob can change some verdict or counterexample (:func:`knob_configurations`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from impl import ImplEngine, explore
from kvmmu.engine import Progress
from kvmmu.vocab import (
    INVARIANTS,
    KNOBS,
    PRESETS,
    Config,
    KnobValue,
    Problem,
    Step,
    Variant,
    make_variant,
)
from spec import SpecEngine, bmc


@dataclass(frozen=True)
class Comparison:
    """One invariant of one problem: the two engines' answers and what disagrees."""

    problem: Problem
    invariant: str
    depth: int
    spec_length: int | None  # shortest counterexample length, None when it holds to the depth
    impl_length: int | None
    spec_verdict: str
    mismatches: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        return not self.mismatches


def _cross_replay(
    engine_name: str, trace: Sequence[Step], problem: Problem, inv: str
) -> str | None:
    """Replay ``trace`` on the engine named ``engine_name``; a mismatch text unless it violates
    ``inv`` at the last step."""
    engine = ImplEngine() if engine_name == "impl" else SpecEngine()
    replay = engine.replay(problem.variant, problem.config, trace)
    if replay.blocked is not None:
        return f"{engine_name} finds step {replay.blocked} of the other's trace not enabled"
    at = replay.first_violation.get(inv)
    if at != len(trace):
        return f"{engine_name} replays the other's trace to a violation at {at}, not {len(trace)}"
    return None


def compare(
    problem: Problem, depth: int, invariants: Sequence[str] = INVARIANTS, timeout_s: float = 300.0
) -> list[Comparison]:
    """Run both engines on ``problem`` to ``depth`` and compare, invariant by invariant."""
    search = explore(problem.variant, problem.config, invariants, depth)
    results = bmc(problem.variant, problem.config, invariants, depth, timeout_s)
    comparisons = []
    for result in results:
        inv = result.invariant
        impl_trace = search.violations.get(inv)
        spec_len = len(result.trace) if result.verdict == "violated" else None
        impl_len = len(impl_trace) if impl_trace is not None else None
        mismatches: list[str] = []
        if result.verdict not in ("violated", "holds"):
            mismatches.append(f"spec verdict {result.verdict}: {result.reason}")
        elif spec_len != impl_len:
            mismatches.append(f"shortest counterexample: spec {spec_len}, impl {impl_len}")
        if result.verdict == "violated":
            mismatches += filter(None, [_cross_replay("impl", result.trace, problem, inv)])
        if impl_trace is not None:
            mismatches += filter(None, [_cross_replay("spec", impl_trace, problem, inv)])
        comparisons.append(
            Comparison(problem, inv, depth, spec_len, impl_len, result.verdict, tuple(mismatches))
        )
    return comparisons


def configurations(max_vcpus: int, notifier: bool = True) -> Iterable[Config]:
    """Mixed configurations of 1 to ``max_vcpus`` vCPUs: each kind alone, then mixes that
    include a special root (the seed's interesting one)."""
    kinds_by_size: dict[int, list[tuple[str, ...]]] = {
        1: [("special",), ("sp",), ("tdp",)],
        2: [("special", "sp"), ("special", "tdp")],
        3: [("special", "sp", "tdp")],
    }
    for size in range(1, max_vcpus + 1):
        for kinds in kinds_by_size.get(size, [("special",) + ("sp",) * (size - 1)]):
            yield Config(vcpus=kinds, notifier=notifier, max_zaps=1)


def sweep(
    max_vcpus: int,
    depth: int,
    presets: Sequence[str] = tuple(PRESETS),
    notifier: bool = True,
    progress: Progress | None = None,
) -> list[Comparison]:
    """Every preset on every configuration of :func:`configurations`. ``progress`` hears
    ``("problems", n)`` after each preset and configuration."""
    out: list[Comparison] = []
    done = 0
    for preset in presets:
        for config in configurations(max_vcpus, notifier):
            out += compare(Problem(make_variant(preset), config), depth)
            done += 1
            if progress is not None:
                progress("problems", done)
    return out


def one_knob_variants(presets: Sequence[str] = tuple(PRESETS)) -> list[Variant]:
    """Each preset, then each preset with one knob set to each of its other values; a variant
    that another one already gives (same knob values: ``paolo`` with the request tested is
    ``v5.16``) comes once, under the first name."""
    seen: dict[tuple[tuple[str, KnobValue], ...], Variant] = {}
    for preset in presets:
        base = make_variant(preset)
        changed = [
            make_variant(preset, {knob: value})
            for knob, values in KNOBS.items()
            for value in values
            if value != base[knob]
        ]
        for variant in (base, *changed):
            seen.setdefault(tuple(sorted(variant.knobs.items())), variant)
    return list(seen.values())


def knob_configurations(max_vcpus: int = 2, notifier: bool = True) -> list[Config]:
    """Configurations on which every knob is observable: each root kind alone (the stale
    check's parts, ``special_roots_have_sp``, ``request``, the zap program, one zapper doing two
    zaps for the generation), and with ``max_vcpus`` >= 2 a special root beside an sp root
    (``stale_check.*`` on both kinds at once) and two sp vCPUs with two zappers (``fault_lock``:
    readers share the lock; ``zap.serialized``; ``generation``: two zappers flip it back)."""
    out = [
        Config(vcpus=(kind,), notifier=notifier, max_zaps=2) for kind in ("sp", "special", "tdp")
    ]
    if max_vcpus >= 2:
        out.append(Config(vcpus=("special", "sp"), notifier=notifier, max_zaps=1))
        out.append(Config(vcpus=("sp", "sp"), zappers=2, notifier=False, max_zaps=1))
    return out


def knob_sweep(
    max_vcpus: int, depth: int, presets: Sequence[str] = tuple(PRESETS), notifier: bool = True
) -> list[Comparison]:
    """Every variant of :func:`one_knob_variants` on every configuration of
    :func:`knob_configurations`."""
    out: list[Comparison] = []
    for variant in one_knob_variants(presets):
        for config in knob_configurations(max_vcpus, notifier):
            out += compare(Problem(variant, config), depth)
    return out
