"""Explicit replays through ImplEngine: blocking, probes, change texts, and what each knob does."""

from __future__ import annotations

import pytest

from impl import ImplEngine, enabled_steps
from kvmmu.engine import Probes, Replay, StateValue
from kvmmu.vocab import Config, KnobValue, Step, make_variant

ENGINE = ImplEngine()
SEED = Config()

FAULT_START = ("vcpu.load", "vcpu.enter", "vcpu.fault", "fault.snapshot", "fault.faultin")
ZAP = ("zap.lock", "zap.new_gen", "zap.request", "zap.zap_obsolete", "zap.unlock")


def steps(*parts: str | tuple[str, tuple[str, ...]]) -> list[Step]:
    """``"vcpu0 fault.lock"`` or ``("vcpu0", (names...))`` -> a schedule."""
    out: list[Step] = []
    for part in parts:
        if isinstance(part, str):
            out.append(Step.parse(part))
        else:
            out.extend(Step(part[0], name) for name in part[1])
    return out


def run(
    schedule: list[Step],
    preset: str = "v5.16",
    overrides: dict[str, KnobValue] | None = None,
    config: Config = SEED,
    state: dict[int, tuple[str, ...]] | None = None,
    enabled: dict[int, tuple[Step, ...]] | None = None,
) -> Replay:
    probes = Probes(state=state or {}, enabled=enabled or {})
    return ENGINE.replay(make_variant(preset, overrides), config, schedule, probes)


def at_end(
    schedule: list[Step],
    paths: tuple[str, ...],
    preset: str = "v5.16",
    overrides: dict[str, KnobValue] | None = None,
    config: Config = SEED,
) -> dict[str, StateValue]:
    """The values of ``paths`` after the whole ``schedule`` (which must run to its end)."""
    replay = run(schedule, preset, overrides, config, state={len(schedule): paths})
    assert replay.blocked is None
    return dict(replay.state[len(schedule)])


def test_engine_name() -> None:
    assert ENGINE.name == "impl"


def test_fault_lock_is_blocked_while_the_zapper_holds_the_lock() -> None:
    schedule = steps(
        ("vcpu0", FAULT_START), "zapper zap.lock", "vcpu0 fault.lock", "zapper zap.new_gen"
    )
    replay = run(schedule, state={6: ("kvm.mmu_lock",), 7: ("kvm.mmu_lock",)})
    assert replay.blocked == 7
    assert len(replay.steps) == 6
    assert [r.index for r in replay.steps] == [1, 2, 3, 4, 5, 6]
    assert replay.state == {6: {"kvm.mmu_lock": "write"}}  # the probe after the block is dropped


def test_unknown_actor_or_wrong_kind_of_step_is_blocked() -> None:
    assert run([Step("vcpu2", "vcpu.load")]).blocked == 1
    assert run([Step("zapper1", "zap.lock")]).blocked == 1
    assert run([Step("zapper", "vcpu.load")]).blocked == 1
    assert run([Step("notifier", "mn.start")]).blocked == 1  # no notifier configured


def test_state_probes() -> None:
    schedule = steps("vcpu0 vcpu.load", "zapper zap.lock", "zapper zap.new_gen")
    paths = (
        "kvm.mmu_valid_gen",
        "kvm.mmu_lock",
        "kvm.mmu_notifier_count",
        "vcpu0.mode",
        "vcpu0.request",
        "vcpu0.unload_due",
        "vcpu0.root.loaded",
        "vcpu0.root.gen",
        "vcpu0.root.obsolete",
        "vcpu0.root.invalid",
        "vcpu0.root.freed",
        "vcpu0.root.spte",
        "vcpu0.fault.stale",
        "vcpu1.root.gen",
        "vcpu7.mode",
    )
    replay = run(schedule, state={0: paths, 3: paths})
    assert replay.state[0] == {
        "kvm.mmu_valid_gen": 0,
        "kvm.mmu_lock": "free",
        "kvm.mmu_notifier_count": 0,
        "vcpu0.mode": "outside",
        "vcpu0.request": False,
        "vcpu0.unload_due": False,
        "vcpu0.root.loaded": False,
        "vcpu0.root.gen": None,
        "vcpu0.root.obsolete": None,
        "vcpu0.root.invalid": None,
        "vcpu0.root.freed": None,
        "vcpu0.root.spte": None,
        "vcpu0.fault.stale": None,  # no fault.check has run
        "vcpu1.root.gen": None,
        "vcpu7.mode": None,
    }
    after = replay.state[3]
    assert after["kvm.mmu_valid_gen"] == 1
    assert after["kvm.mmu_lock"] == "write"
    assert after["vcpu0.root.loaded"] is True
    assert after["vcpu0.root.gen"] == 0
    assert after["vcpu0.root.obsolete"] is True
    assert after["vcpu0.root.invalid"] is False  # a special root: only TDP roots are invalidated


def test_unknown_state_path_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown state path"):
        run([], state={0: ("kvm.nonsense",)})


def test_enabled_probes_and_enabled_steps() -> None:
    schedule = steps("vcpu0 vcpu.load", "zapper zap.lock")
    probe = (Step("vcpu0", "vcpu.enter"), Step("vcpu1", "vcpu.load"), Step("zapper", "zap.new_gen"))
    replay = run(schedule, enabled={1: probe, 2: probe})
    assert replay.enabled[1] == {probe[0]: True, probe[1]: True, probe[2]: False}
    assert replay.enabled[2] == {probe[0]: True, probe[1]: False, probe[2]: True}
    assert enabled_steps(make_variant(), SEED, schedule) == (
        Step("vcpu0", "vcpu.enter"),
        Step("zapper", "zap.new_gen"),
    )
    with pytest.raises(ValueError, match="not enabled"):
        enabled_steps(make_variant(), SEED, steps("vcpu0 vcpu.enter"))


def test_step_records_say_what_changed() -> None:
    schedule = steps("vcpu0 vcpu.load", "zapper zap.lock", "zapper zap.new_gen")
    records = run(schedule).steps
    assert records[0].changes == "vcpu0.root loaded (gen 0)"
    assert "kvm.mmu_lock free→write" in records[1].changes
    assert "kvm.mmu_valid_gen 0→1" in records[2].changes
    assert "vcpu0.root.obsolete false→true" in records[2].changes
    assert all(r.violations == frozenset() for r in records)


def test_paolo_trace_records_violation_and_covers() -> None:
    schedule = steps(
        ("vcpu0", ("vcpu.load", "vcpu.enter", "vcpu.fault")),
        ("zapper", ZAP),
        ("vcpu0", ("fault.snapshot", "fault.faultin", "fault.lock", "fault.check", "fault.map")),
    )
    replay = run(schedule, preset="paolo", state={12: ("vcpu0.fault.stale",)})
    assert replay.first_violation == {"no_spte_in_obsolete_root": 13}
    assert replay.steps[-1].violations == frozenset({"no_spte_in_obsolete_root"})
    assert replay.steps[-1].covers == frozenset({"fault.map"})
    assert replay.steps[6].covers == frozenset({"zap.zap_obsolete"})
    assert replay.state[12] == {"vcpu0.fault.stale": False}
    # v5.16: the pending request makes the same fault stale, so fault.map is not enabled
    v516 = run(schedule, state={12: ("vcpu0.fault.stale",)})
    assert v516.blocked == 13
    assert v516.state[12] == {"vcpu0.fault.stale": True}
    assert v516.steps[-1].covers == frozenset({"retry.obsolete"})


def test_unguarded_check_crashes_on_a_special_root_and_keeps_the_lock() -> None:
    schedule = steps(("vcpu0", (*FAULT_START, "fault.lock", "fault.check")))
    replay = run(
        schedule,
        preset="v5.16-rc4",
        state={7: ("vcpu0.mode", "kvm.mmu_lock")},
        enabled={7: (Step("zapper", "zap.lock"), Step("vcpu0", "fault.unlock"))},
    )
    assert replay.first_violation == {"no_null_deref": 7}
    assert replay.state[7] == {"vcpu0.mode": "crashed", "kvm.mmu_lock": "write"}
    assert not any(replay.enabled[7].values())


def test_short_circuit_crash_comes_before_consuming_the_request() -> None:
    # a zap leaves the request pending; the unguarded part 1 crashes before part 2 could clear it
    schedule = steps(
        ("vcpu0", FAULT_START), ("zapper", ZAP), "vcpu0 fault.lock", "vcpu0 fault.check"
    )
    values = at_end(
        schedule,
        ("vcpu0.mode", "vcpu0.request"),
        preset="v5.16-rc4",
        overrides={"stale_check.reload_request": "check"},
    )
    assert values == {"vcpu0.mode": "crashed", "vcpu0.request": True}


@pytest.mark.parametrize(
    ("preset", "cover"), [("v5.16", "retry.obsolete"), ("paolo", "retry.notifier")]
)
def test_short_circuit_request_part_is_judged_before_the_notifier(preset: str, cover: str) -> None:
    schedule = steps(
        ("vcpu0", FAULT_START),
        "notifier mn.start",
        ("zapper", ZAP),
        "vcpu0 fault.lock",
        "vcpu0 fault.check",
    )
    replay = run(schedule, preset=preset, config=Config(notifier=True))
    assert replay.blocked is None
    assert replay.steps[-1].covers == frozenset({cover})


@pytest.mark.parametrize(("mode", "still_pending"), [("test", True), ("check", False)])
def test_reload_request_test_keeps_and_check_clears_the_bit(mode: str, still_pending: bool) -> None:
    schedule = steps(
        ("vcpu0", FAULT_START), ("zapper", ZAP), "vcpu0 fault.lock", "vcpu0 fault.check"
    )
    values = at_end(
        schedule,
        ("vcpu0.request", "vcpu0.fault.stale"),
        overrides={"stale_check.reload_request": mode},
    )
    assert values == {"vcpu0.request": still_pending, "vcpu0.fault.stale": True}


@pytest.mark.parametrize(("mode", "still_pending"), [("test", True), ("check", False)])
def test_request_before_lock_adds_fault_check_request(mode: str, still_pending: bool) -> None:
    knobs: dict[str, KnobValue] = {
        "stale_check.request_before_lock": True,
        "stale_check.reload_request": mode,
    }
    schedule = steps(("vcpu0", FAULT_START), ("zapper", ZAP), "vcpu0 fault.check_request")
    replay = run(
        schedule, overrides=knobs, state={11: ("vcpu0.mode", "vcpu0.request", "kvm.mmu_lock")}
    )
    assert replay.blocked is None
    assert replay.state[11] == {
        "vcpu0.mode": "outside",
        "vcpu0.request": still_pending,
        "kvm.mmu_lock": "free",
    }
    assert replay.steps[-1].covers == frozenset({"retry.obsolete"})
    # without the knob the step does not exist on the fault path
    assert run(schedule).blocked == 11


def test_fault_check_request_goes_on_to_the_lock_when_no_request() -> None:
    knobs: dict[str, KnobValue] = {"stale_check.request_before_lock": True}
    schedule = steps(
        ("vcpu0", (*FAULT_START, "fault.check_request", "fault.lock", "fault.check", "fault.map"))
    )
    assert run(schedule, overrides=knobs).blocked is None


@pytest.mark.parametrize(
    ("fault_lock", "shared"), [("auto", True), ("read", True), ("write", False)]
)
def test_fault_lock_mode_for_tdp_roots(fault_lock: str, shared: bool) -> None:
    config = Config(vcpus=("tdp", "tdp"))
    schedule = steps(
        ("vcpu1", FAULT_START), ("vcpu0", (*FAULT_START, "fault.lock")), "vcpu1 fault.lock"
    )
    replay = run(
        schedule, overrides={"fault_lock": fault_lock}, config=config, state={11: ("kvm.mmu_lock",)}
    )
    assert replay.state[11] == {"kvm.mmu_lock": "read" if shared else "write"}
    assert replay.blocked == (None if shared else 12)


def test_fault_lock_auto_is_write_for_shadow_roots_and_read_knob_shares_it() -> None:
    config = Config(vcpus=("sp", "special"))
    schedule = steps(
        ("vcpu1", FAULT_START), ("vcpu0", (*FAULT_START, "fault.lock")), "vcpu1 fault.lock"
    )
    assert run(schedule, config=config).blocked == 12
    assert run(schedule, overrides={"fault_lock": "read"}, config=config).blocked is None


@pytest.mark.parametrize(("generation", "gen"), [("bit", 0), ("counter", 2)])
def test_generation_bit_wraps_and_counter_counts(generation: str, gen: int) -> None:
    schedule = steps(("zapper", ZAP), ("zapper", ZAP))
    values = at_end(schedule, ("kvm.mmu_valid_gen",), overrides={"generation": generation})
    assert values == {"kvm.mmu_valid_gen": gen}
    assert run([*schedule, *steps(("zapper", ZAP))]).blocked == 11  # max_zaps 2


def test_zap_new_gen_invalidates_tdp_roots_only() -> None:
    config = Config(vcpus=("tdp", "sp"))
    schedule = steps("vcpu0 vcpu.load", "vcpu1 vcpu.load", "zapper zap.lock", "zapper zap.new_gen")
    values = at_end(
        schedule, ("vcpu0.root.invalid", "vcpu1.root.invalid", "vcpu1.root.obsolete"), config=config
    )
    assert values == {
        "vcpu0.root.invalid": True,
        "vcpu1.root.invalid": False,
        "vcpu1.root.obsolete": True,
    }


def test_zap_request_kicks_guests_and_sets_every_request() -> None:
    schedule = steps(
        "vcpu0 vcpu.load",
        "vcpu0 vcpu.enter",
        "zapper zap.lock",
        "zapper zap.new_gen",
        "zapper zap.request",
    )
    values = at_end(schedule, ("vcpu0.mode", "vcpu0.request", "vcpu1.request"))
    assert values == {"vcpu0.mode": "outside", "vcpu0.request": True, "vcpu1.request": True}


@pytest.mark.parametrize(
    ("respect", "invalid", "freed"), [(True, True, False), (False, None, True)]
)
def test_zap_obsolete_respects_root_count(respect: bool, invalid: bool | None, freed: bool) -> None:
    schedule = steps(
        "vcpu0 vcpu.load",
        "zapper zap.lock",
        "zapper zap.new_gen",
        "zapper zap.request",
        "zapper zap.zap_obsolete",
    )
    replay = run(
        schedule,
        overrides={"zap.respect_root_count": respect},
        state={5: ("vcpu0.root.invalid", "vcpu0.root.freed", "vcpu0.root.loaded")},
    )
    values = replay.state[5]
    assert values["vcpu0.root.freed"] is freed
    assert values["vcpu0.root.loaded"] is True
    if invalid is not None:
        assert values["vcpu0.root.invalid"] is invalid
    assert ("no_use_after_free" in replay.first_violation) is not respect


def test_zap_program_knobs() -> None:
    after_lock = steps("zapper zap.lock")
    probe = (Step("zapper", "zap.new_gen"), Step("zapper", "zap.request"))
    assert run(after_lock, enabled={1: probe}).enabled[1] == {probe[0]: True, probe[1]: False}
    swapped = run(after_lock, overrides={"zap.request_before_gen": True}, enabled={1: probe})
    assert swapped.enabled[1] == {probe[0]: False, probe[1]: True}

    before_zap = steps("zapper zap.lock", "zapper zap.new_gen", "zapper zap.request")
    probe = (Step("zapper", "zap.yield"), Step("zapper", "zap.zap_obsolete"))
    assert run(before_zap, enabled={3: probe}).enabled[3] == {probe[0]: False, probe[1]: True}
    yielding = run(before_zap, overrides={"zap.yield": True}, enabled={3: probe})
    assert yielding.enabled[3] == {probe[0]: True, probe[1]: True}  # the yield is optional
    yield_knob = make_variant("v5.16", {"zap.yield": True})
    assert set(probe) <= set(enabled_steps(yield_knob, SEED, before_zap))  # the search agrees
    # once per zap: after yield and relock, only zap.zap_obsolete
    again = [*before_zap, *steps("zapper zap.yield", "vcpu0 vcpu.load", "zapper zap.relock")]
    assert run(again, overrides={"zap.yield": True}, enabled={6: probe}).enabled[6] == {
        probe[0]: False,
        probe[1]: True,
    }


def test_unlock_mid_releases_the_lock_between_gen_and_request() -> None:
    knobs: dict[str, KnobValue] = {"zap.unlock_between_gen_and_request": True}
    schedule = steps(
        "vcpu0 vcpu.load",
        "vcpu0 vcpu.enter",
        "zapper zap.lock",
        "zapper zap.new_gen",
        "zapper zap.unlock_mid",
    )
    replay = run(
        schedule, overrides=knobs, state={5: ("kvm.mmu_lock", "vcpu0.mode", "vcpu0.root.obsolete")}
    )
    assert replay.state[5] == {
        "kvm.mmu_lock": "free",
        "vcpu0.mode": "guest",
        "vcpu0.root.obsolete": True,
    }
    # the guest on an obsolete root is inside the zapper's window: not a violation yet
    assert replay.first_violation == {}
    assert run(schedule).blocked == 5


def test_request_before_gen_has_no_window() -> None:
    knobs: dict[str, KnobValue] = {
        "zap.request_before_gen": True,
        "zap.unlock_between_gen_and_request": True,
    }
    # the vCPU reloads between the request and the generation change, then runs on a root
    # that the generation change makes obsolete, with no request left to kick it out
    schedule = steps(
        ("zapper", ("zap.lock", "zap.request", "zap.unlock_mid")),
        ("vcpu0", ("vcpu.check_request", "vcpu.unload", "vcpu.load", "vcpu.enter")),
        ("zapper", ("zap.relock", "zap.new_gen")),
    )
    replay = run(schedule, overrides=knobs, state={9: ("vcpu0.mode", "vcpu0.request")})
    assert replay.first_violation == {"no_guest_on_obsolete_root": 9}
    assert replay.state[9] == {"vcpu0.mode": "guest", "vcpu0.request": False}


@pytest.mark.parametrize(("serialized", "blocked"), [(True, 4), (False, None)])
def test_slots_lock_serializes_zappers(serialized: bool, blocked: int | None) -> None:
    knobs: dict[str, KnobValue] = {
        "zap.serialized": serialized,
        "zap.unlock_between_gen_and_request": True,
    }
    schedule = steps(
        "zapper zap.lock", "zapper zap.new_gen", "zapper zap.unlock_mid", "zapper1 zap.lock"
    )
    assert run(schedule, overrides=knobs, config=Config(zappers=2)).blocked == blocked


@pytest.mark.parametrize(("request_knob", "kept"), [("reload", False), ("free_obsolete", True)])
def test_free_obsolete_keeps_a_valid_root(request_knob: str, kept: bool) -> None:
    config = Config(vcpus=("sp",))
    # the root is loaded after the zap: valid, yet the request is pending
    schedule = steps(
        ("zapper", ZAP), "vcpu0 vcpu.load", "vcpu0 vcpu.check_request", "vcpu0 vcpu.unload"
    )
    values = at_end(
        schedule,
        ("vcpu0.root.loaded", "vcpu0.unload_due"),
        overrides={"request": request_knob},
        config=config,
    )
    assert values == {"vcpu0.root.loaded": kept, "vcpu0.unload_due": False}


def test_free_obsolete_drops_special_roots_always() -> None:
    schedule = steps(
        ("zapper", ZAP), "vcpu0 vcpu.load", "vcpu0 vcpu.check_request", "vcpu0 vcpu.unload"
    )
    assert at_end(schedule, ("vcpu0.root.loaded",), preset="v5.18") == {"vcpu0.root.loaded": False}
    has_sp: dict[str, KnobValue] = {"special_roots_have_sp": True}
    assert at_end(schedule, ("vcpu0.root.loaded",), preset="v5.18", overrides=has_sp) == {
        "vcpu0.root.loaded": True
    }


def test_enter_after_reload_is_covered() -> None:
    schedule = steps(
        ("zapper", ZAP),
        "vcpu0 vcpu.check_request",
        "vcpu0 vcpu.unload",
        "vcpu0 vcpu.load",
        "vcpu0 vcpu.enter",
    )
    replay = run(schedule)
    assert replay.blocked is None
    assert replay.steps[-1].covers == frozenset({"enter.after_reload"})
    plain = run(steps("vcpu0 vcpu.load", "vcpu0 vcpu.enter"))
    assert plain.steps[-1].covers == frozenset()


def test_notifier_zaps_sptes_and_makes_pfns_and_snapshots_stale() -> None:
    config = Config(vcpus=("sp",), notifier=True)
    mapped = steps(
        ("vcpu0", (*FAULT_START, "fault.lock", "fault.check", "fault.map", "fault.unlock"))
    )
    values = at_end(
        [*mapped, *steps("notifier mn.start")],
        ("vcpu0.root.spte", "kvm.mmu_notifier_count"),
        config=config,
    )
    assert values == {"vcpu0.root.spte": False, "kvm.mmu_notifier_count": 1}
    # a fault that read its pfn before mn.start and snapshotted before mn.end is stale (part 3)
    racing = steps(
        ("vcpu0", FAULT_START),
        "notifier mn.start",
        "notifier mn.end",
        "vcpu0 fault.lock",
        "vcpu0 fault.check",
    )
    replay = run(racing, config=config)
    assert replay.steps[-1].covers == frozenset({"retry.notifier"})
    # without the notifier check the stale pfn is mapped
    unchecked = run(
        [*racing, *steps("vcpu0 fault.map")],
        overrides={"stale_check.mmu_notifier": False},
        config=config,
    )
    assert unchecked.first_violation == {"no_stale_pfn": 10}
    assert run(steps("notifier mn.start", "notifier mn.start"), config=config).blocked == 2
