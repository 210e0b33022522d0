"""The Z3 specification of the KVM x86 MMU obsolete-root protocol (``docs/protocol.md`` section 6).

A symbolic transition system specialised to one variant (every knob fixed at encoding time):
``variants`` resolves the knobs and the configuration, ``state`` holds the symbolic state,
``steps`` the transitions of section 6.3, ``invariants`` the invariants and cover targets of
sections 6.4 and 6.5, ``bmc`` the incremental bounded model checker, and ``engine`` the
:class:`SpecEngine` that replays schedules symbolically; ``facts`` names the guards, lock facts
and orderings of the relation and ``why`` finds the ones a proof needs (``kvmmu why``).
Independent of ``impl``.
"""

from spec.bmc import BmcResult, Verdict, bmc, render, unreached, vacuous
from spec.engine import SpecEngine

__all__ = ["BmcResult", "SpecEngine", "Verdict", "bmc", "render", "unreached", "vacuous"]
