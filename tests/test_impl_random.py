"""Random schedules: the implementation never crashes, and replays reproduce random traces."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from impl import ImplEngine, Model, random_trace
from kvmmu.vocab import (
    INVARIANTS,
    KNOBS,
    PRESETS,
    ROOT_KINDS,
    STEPS_BY_KIND,
    Config,
    KnobValue,
    Step,
    Variant,
    actor_kind,
    make_variant,
)

ENGINE = ImplEngine()


@st.composite
def variants(draw: st.DrawFn) -> Variant:
    preset = draw(st.sampled_from(sorted(PRESETS)))
    knobs = draw(st.lists(st.sampled_from(sorted(KNOBS)), max_size=4, unique=True))
    overrides: dict[str, KnobValue] = {k: draw(st.sampled_from(KNOBS[k])) for k in knobs}
    return make_variant(preset, overrides)


@st.composite
def configs(draw: st.DrawFn) -> Config:
    vcpus = draw(st.lists(st.sampled_from(ROOT_KINDS), min_size=1, max_size=3))
    return Config(
        vcpus=tuple(vcpus),
        zappers=draw(st.integers(0, 2)),
        notifier=draw(st.booleans()),
        max_zaps=draw(st.one_of(st.none(), st.integers(0, 3))),
        max_invalidations=draw(st.one_of(st.none(), st.integers(0, 2))),
    )


@settings(derandomize=True, max_examples=50, deadline=None)
@given(variants(), configs(), st.integers(0, 2**32), st.integers(0, 80))
def test_random_trace_replays_exactly(
    variant: Variant, config: Config, seed: int, length: int
) -> None:
    trace = random_trace(variant, config, seed, length)
    assert len(trace) <= length
    assert random_trace(variant, config, seed, length) == trace  # seeded: reproducible
    replay = ENGINE.replay(variant, config, trace)
    assert replay.blocked is None
    assert tuple(r.step for r in replay.steps) == trace
    assert [r.index for r in replay.steps] == list(range(1, len(trace) + 1))
    assert set(replay.first_violation) <= set(INVARIANTS)
    for name, index in replay.first_violation.items():
        assert name in replay.steps[index - 1].violations
        assert all(name not in r.violations for r in replay.steps[: index - 1])
    if len(trace) < length:
        # the walk stopped early: nothing is enabled at its end
        model = Model.of(variant, config)
        m = model.initial()
        for step in trace:
            after = model.run(m, step)
            assert after is not None
            m = after
        assert model.enabled(m) == ()


@settings(derandomize=True, max_examples=50, deadline=None)
@given(variants(), configs(), st.integers(0, 2**32))
def test_state_stays_well_formed(variant: Variant, config: Config, seed: int) -> None:
    """Along any random walk: lock bookkeeping agrees with the vCPUs' fault locals, and the
    steps enabled for the search are exactly those the replay accepts."""
    model = Model.of(variant, config)
    m = model.initial()
    for step in random_trace(variant, config, seed, 60):
        after = model.run(m, step)
        assert after is not None
        m = after
        lock = m.kvm.mmu_lock
        assert lock.writer is None or not lock.readers
        for i, v in enumerate(m.vcpus):
            name = f"vcpu{i}"
            assert (v.lock == "write") == (lock.writer == name)
            assert (v.lock == "read") == (name in lock.readers)
            assert v.mode not in ("guest", "fault") or v.root is not None
        assert m.kvm.mmu_notifier_count == (1 if m.notifier and m.notifier.started else 0)
        # the search's successor function and the replay's step function agree
        every = [
            Step(a, n) for a in config.actors() for n in STEPS_BY_KIND[actor_kind(a) or "vcpu"]
        ]
        assert {s for s in every if model.run(m, s) is not None} == set(model.enabled(m))
