"""A variant and a configuration, checked once and turned into typed fields.

The kernel functions read knobs on every step; typed attributes are both faster than a mapping
lookup and checked by mypy. The programs of ``programs.py`` (which knobs reorder and extend) are
computed here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from impl.programs import direct_page_fault_program, kvm_mmu_zap_all_fast_program
from kvmmu.vocab import Config, Knobs, Variant, config_error


@dataclass(frozen=True)
class Params:
    """Everything fixed for a run: the knob values and the configuration."""

    config: Config
    knobs: Knobs
    # the zapper's program: step names, one position after another (section 6.3)
    zap_program: tuple[str, ...]
    # the fault path: each step -> the step after it (programs.direct_page_fault_program)
    fault_next: dict[str, str]
    # actor name -> (kind, index) in Machine.vcpus / Machine.zappers
    actors: dict[str, tuple[str, int]]

    # Config.actors(), computed once: actor name order is the exploration order
    actor_names: tuple[str, ...]

    def has_sp(self, kind: str) -> bool:
        """Whether a root of ``kind`` has a shadow page (``to_shadow_page()`` is not NULL)."""
        return kind != "special" or self.knobs.special_roots_have_sp

    def in_window(self, zap_pc: int) -> bool:
        """A zapper at ``zap_pc`` has done ``zap.new_gen`` and not yet ``zap.request`` of the
        same zap (section 6.4; never with ``zap.request_before_gen``)."""
        if self.knobs.request_before_gen:
            return False
        return (
            self.zap_program.index("zap.new_gen") < zap_pc <= self.zap_program.index("zap.request")
        )


def _successor_map(program: tuple[str, ...]) -> dict[str, str]:
    return dict(pairwise(program))


def make_params(variant: Variant, config: Config) -> Params:
    """Check ``variant`` and ``config`` and build the run's parameters; ValueError if the model
    cannot run them."""
    reason = config_error(config)
    if reason:
        raise ValueError(f"invalid configuration: {reason}")
    try:
        knobs = Knobs.of(variant)  # every knob present, with a value it takes
    except ValueError as err:
        raise ValueError(f"variant {variant.name!r}: {err}") from None
    actors: dict[str, tuple[str, int]] = {}
    for i in range(len(config.vcpus)):
        actors[f"vcpu{i}"] = ("vcpu", i)
    for i, name in enumerate(("zapper", "zapper1")[: config.zappers]):
        actors[name] = ("zapper", i)
    if config.notifier:
        actors["notifier"] = ("notifier", 0)
    return Params(
        config=config,
        knobs=knobs,
        zap_program=kvm_mmu_zap_all_fast_program(
            knobs.request_before_gen, knobs.unlock_between_gen_and_request, knobs.zap_yield
        ),
        fault_next=_successor_map(direct_page_fault_program(knobs.request_before_lock)),
        actors=actors,
        actor_names=config.actors(),
    )
