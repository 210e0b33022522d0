"""Symbolic replay with ``SpecEngine``: blocked steps, probes, violations and covers per step."""

from __future__ import annotations

from kvmmu.engine import Engine, Probes, Replay
from kvmmu.vocab import Config, Step, make_variant
from spec import SpecEngine

SEED = Config(vcpus=("special", "sp"), zappers=1)


def steps(text: str) -> list[Step]:
    return [Step.parse(line) for line in text.strip().splitlines()]


NO_PROBES = Probes()


def replay(preset: str, schedule: list[Step], probes: Probes = NO_PROBES, **kw: object) -> Replay:
    overrides = kw.pop("overrides", {})
    config = kw.pop("config", SEED)
    assert isinstance(overrides, dict) and isinstance(config, Config)
    engine: Engine = SpecEngine()
    return engine.replay(make_variant(preset, overrides), config, schedule, probes)


FAULT_UNDER_LOCK = steps(
    """
    vcpu0 vcpu.load
    vcpu0 vcpu.enter
    vcpu0 vcpu.fault
    vcpu0 fault.snapshot
    vcpu0 fault.faultin
    vcpu0 fault.lock
    zapper zap.lock
    vcpu0 fault.check
    """
)


def test_engine_name() -> None:
    assert SpecEngine().name == "spec"


def test_zapper_blocked_while_a_fault_holds_the_lock() -> None:
    probes = Probes(
        state={
            0: ("kvm.mmu_lock", "vcpu0.mode", "vcpu0.root.loaded", "vcpu0.root.gen"),
            6: (
                "kvm.mmu_lock",
                "kvm.mmu_valid_gen",
                "vcpu0.mode",
                "vcpu0.root.gen",
                "vcpu0.root.obsolete",
                "vcpu1.root.loaded",
                "vcpu1.root.gen",
                "vcpu0.fault.stale",
                "no.such.path",
            ),
            7: ("kvm.mmu_lock",),
        },
        enabled={
            6: (
                Step("zapper", "zap.lock"),
                Step("vcpu0", "fault.check"),
                Step("vcpu0", "fault.map"),
                Step("vcpu1", "vcpu.load"),
                Step("vcpu9", "vcpu.load"),
            )
        },
    )
    r = replay("v5.16", FAULT_UNDER_LOCK, probes)
    assert r.blocked == 7
    assert [rec.index for rec in r.steps] == [1, 2, 3, 4, 5, 6]
    assert [rec.step for rec in r.steps] == FAULT_UNDER_LOCK[:6]
    assert r.first_violation == {}
    assert r.state[0] == {
        "kvm.mmu_lock": "free",
        "vcpu0.mode": "outside",
        "vcpu0.root.loaded": False,
        "vcpu0.root.gen": None,
    }
    assert r.state[6] == {
        "kvm.mmu_lock": "write",
        "kvm.mmu_valid_gen": 0,
        "vcpu0.mode": "fault",
        "vcpu0.root.gen": 0,
        "vcpu0.root.obsolete": False,
        "vcpu1.root.loaded": False,
        "vcpu1.root.gen": None,
        "vcpu0.fault.stale": None,
        "no.such.path": None,
    }
    assert 7 not in r.state  # after the blocked step: not answered
    assert r.enabled[6] == {
        Step("zapper", "zap.lock"): False,
        Step("vcpu0", "fault.check"): True,
        Step("vcpu0", "fault.map"): False,
        Step("vcpu1", "vcpu.load"): False,  # vcpu.load needs the lock free
        Step("vcpu9", "vcpu.load"): False,  # no such vCPU
    }


def test_a_read_locked_tdp_fault_lets_another_reader_in() -> None:
    config = Config(vcpus=("tdp", "tdp"))
    schedule = steps(
        """
        vcpu0 vcpu.load
        vcpu1 vcpu.load
        vcpu0 vcpu.enter
        vcpu1 vcpu.enter
        vcpu0 vcpu.fault
        vcpu1 vcpu.fault
        vcpu0 fault.snapshot
        vcpu1 fault.snapshot
        vcpu0 fault.faultin
        vcpu1 fault.faultin
        vcpu0 fault.lock
        vcpu1 fault.lock
        zapper zap.lock
        """
    )
    r = replay("v5.16", schedule, Probes(state={12: ("kvm.mmu_lock",)}), config=config)
    assert r.blocked == 13
    assert r.state[12] == {"kvm.mmu_lock": "read"}


def test_v5_16_retries_the_special_root_fault_and_reloads() -> None:
    schedule = steps(
        """
        vcpu0 vcpu.load
        vcpu0 vcpu.enter
        vcpu0 vcpu.fault
        vcpu0 fault.snapshot
        zapper zap.lock
        zapper zap.new_gen
        zapper zap.request
        zapper zap.zap_obsolete
        zapper zap.unlock
        vcpu0 fault.faultin
        vcpu0 fault.lock
        vcpu0 fault.check
        vcpu0 fault.unlock
        vcpu0 vcpu.enter
        vcpu0 vcpu.check_request
        vcpu0 vcpu.unload
        vcpu0 vcpu.load
        vcpu0 vcpu.enter
        """
    )
    probes = Probes(
        state={
            12: ("vcpu0.fault.stale", "vcpu0.request", "vcpu0.root.invalid", "kvm.mmu_valid_gen"),
            13: ("vcpu0.fault.stale", "vcpu0.mode"),
            17: ("vcpu0.root.gen", "vcpu0.root.obsolete", "vcpu0.request", "vcpu0.unload_due"),
        },
        enabled={13: (Step("vcpu0", "vcpu.enter"), Step("vcpu0", "vcpu.check_request"))},
    )
    r = replay("v5.16", schedule, probes)
    assert r.blocked == 14  # the request is pending: no entry
    assert r.state[12] == {
        "vcpu0.fault.stale": True,  # kvm_test_request: the bit stays
        "vcpu0.request": True,
        "vcpu0.root.invalid": True,
        "kvm.mmu_valid_gen": 1,
    }
    assert r.state[13] == {"vcpu0.fault.stale": None, "vcpu0.mode": "outside"}
    assert r.enabled[13] == {
        Step("vcpu0", "vcpu.enter"): False,
        Step("vcpu0", "vcpu.check_request"): True,
    }
    assert r.steps[11].covers == frozenset({"retry.obsolete"})  # at fault.check (step 12)
    assert r.steps[7].covers == frozenset({"zap.zap_obsolete"})
    assert r.first_violation == {}

    fixed = schedule[:13] + schedule[14:]
    r = replay("v5.16", fixed, probes)
    assert r.blocked is None
    assert r.steps[-1].covers == frozenset({"enter.after_reload"})
    assert r.state[17] == {
        "vcpu0.root.gen": 1,
        "vcpu0.root.obsolete": False,
        "vcpu0.request": False,
        "vcpu0.unload_due": False,
    }
    assert r.first_violation == {}


def test_check_request_clears_the_bit_and_the_guest_runs_on_an_obsolete_root() -> None:
    schedule = steps(
        """
        vcpu0 vcpu.load
        vcpu0 vcpu.enter
        vcpu0 vcpu.fault
        vcpu0 fault.snapshot
        zapper zap.lock
        zapper zap.new_gen
        zapper zap.request
        zapper zap.zap_obsolete
        zapper zap.unlock
        vcpu0 fault.faultin
        vcpu0 fault.lock
        vcpu0 fault.check
        vcpu0 fault.unlock
        vcpu0 vcpu.enter
        vcpu0 vcpu.fault
        """
    )
    probes = Probes(state={12: ("vcpu0.request", "vcpu0.fault.stale")})
    r = replay("v5.16", schedule, probes, overrides={"stale_check.reload_request": "check"})
    assert r.blocked is None
    assert r.state[12] == {"vcpu0.request": False, "vcpu0.fault.stale": True}
    assert r.first_violation == {"no_guest_on_obsolete_root": 14}
    assert r.steps[13].violations == frozenset({"no_guest_on_obsolete_root"})
    assert r.steps[14].violations == frozenset()  # out of guest mode again


def test_guest_on_obsolete_root_is_excused_inside_the_zap_window() -> None:
    schedule = steps(
        """
        vcpu1 vcpu.load
        vcpu1 vcpu.enter
        zapper zap.lock
        zapper zap.new_gen
        zapper zap.request
        """
    )
    probes = Probes(state={4: ("vcpu1.mode", "vcpu1.root.obsolete"), 5: ("vcpu1.mode",)})
    r = replay("v5.16", schedule, probes)
    assert r.blocked is None
    assert r.state[4] == {"vcpu1.mode": "guest", "vcpu1.root.obsolete": True}
    assert r.state[5] == {"vcpu1.mode": "outside"}  # kicked
    assert r.first_violation == {}


def test_unguarded_check_crashes_and_the_vcpu_is_stuck() -> None:
    schedule = steps(
        """
        vcpu0 vcpu.load
        vcpu0 vcpu.enter
        vcpu0 vcpu.fault
        vcpu0 fault.snapshot
        vcpu0 fault.faultin
        vcpu0 fault.lock
        vcpu0 fault.check
        vcpu0 fault.map
        """
    )
    probes = Probes(
        state={7: ("vcpu0.mode", "kvm.mmu_lock", "vcpu0.fault.stale")},
        enabled={7: tuple(Step("vcpu0", name) for name in ("fault.map", "fault.unlock"))},
    )
    r = replay("v5.16-rc4", schedule, probes)
    assert r.blocked == 8
    assert r.first_violation == {"no_null_deref": 7}
    assert r.state[7] == {
        "vcpu0.mode": "crashed",
        "kvm.mmu_lock": "write",
        "vcpu0.fault.stale": None,
    }
    assert not any(r.enabled[7].values())


def test_steps_the_variant_lacks_are_never_enabled() -> None:
    schedule = steps(
        """
        zapper zap.lock
        zapper zap.new_gen
        zapper zap.request
        zapper zap.yield
        """
    )
    assert replay("v5.16", schedule).blocked == 4
    r = replay("v5.16", schedule, overrides={"zap.yield": True})
    assert r.blocked is None
    assert replay("v5.16", steps("notifier mn.start")).blocked == 1  # no notifier configured
    assert replay("v5.16", steps("vcpu2 vcpu.load")).blocked == 1  # only two vCPUs


def test_notifier_invalidation_makes_the_fault_retry() -> None:
    config = Config(vcpus=("sp",), notifier=True)
    schedule = steps(
        """
        vcpu0 vcpu.load
        vcpu0 vcpu.enter
        vcpu0 vcpu.fault
        vcpu0 fault.snapshot
        vcpu0 fault.faultin
        notifier mn.start
        notifier mn.end
        vcpu0 fault.lock
        vcpu0 fault.check
        vcpu0 fault.unlock
        notifier mn.start
        """
    )
    probes = Probes(state={6: ("kvm.mmu_notifier_count",), 7: ("kvm.mmu_notifier_count",)})
    r = replay("v5.16", schedule, probes, config=config)
    assert r.blocked == 11  # max_invalidations is 1
    assert r.state == {6: {"kvm.mmu_notifier_count": 1}, 7: {"kvm.mmu_notifier_count": 0}}
    assert r.steps[8].covers == frozenset({"retry.notifier"})  # at fault.check (step 9)

    unchecked = {"stale_check.mmu_notifier": False}
    r = replay("v5.16", schedule[:9] + steps("vcpu0 fault.map"), config=config, overrides=unchecked)
    assert r.first_violation == {"no_stale_pfn": 10}


def test_freeing_an_in_use_root_is_a_use_after_free() -> None:
    schedule = steps(
        """
        vcpu1 vcpu.load
        zapper zap.lock
        zapper zap.new_gen
        zapper zap.request
        zapper zap.zap_obsolete
        zapper zap.unlock
        """
    )
    probes = Probes(state={5: ("vcpu1.root.freed", "vcpu1.root.loaded")})
    r = replay("v5.16", schedule, probes, overrides={"zap.respect_root_count": False})
    assert r.first_violation == {"no_use_after_free": 5}
    assert r.state[5] == {"vcpu1.root.freed": True, "vcpu1.root.loaded": True}
    r = replay("v5.16", schedule, probes)
    assert r.first_violation == {}
    assert r.state[5] == {"vcpu1.root.freed": False, "vcpu1.root.loaded": True}


def test_changes_text() -> None:
    r = replay("v5.16", steps("vcpu0 vcpu.load\nvcpu0 vcpu.enter"))
    assert r.steps[1].changes == "vcpu0.mode: outside -> guest"


def test_decoded_states_have_exactly_the_section_6_7_paths() -> None:
    from kvmmu.vocab import state_paths
    from spec import bmc

    config = Config(vcpus=("special", "sp", "tdp"), notifier=True)
    r = bmc(make_variant("paolo"), config, ["no_spte_in_obsolete_root"], depth=14)[0]
    assert r.verdict == "violated"
    for state in r.states:
        assert tuple(state) == state_paths(config)
