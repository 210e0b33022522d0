"""Invariants (``docs/protocol.md`` section 6.4) and cover targets (section 6.5).

Both are predicates over one step: the state before it ``s``, the step choice ``c`` and the state
after it ``t``. A step invariant looks at ``s`` and ``c``; a state invariant looks at ``t`` (so
the step that leads to the bad state is the violating one). Each function returns the *bad*
predicate: true exactly when the step violates the invariant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import z3

from kvmmu.vocab import COVER_TARGETS, INVARIANTS, Step
from kvmmu.vocab import required_covers as vocab_required_covers
from spec.facts import unless_dropped
from spec.state import Expr, State, in_guest
from spec.steps import is_choice, request_part
from spec.variants import STALE_NOTIFIER, STALE_OBSOLETE, Layout

Predicate = Callable[[State, Expr, State], Expr]


def _took(s: State, c: Expr, actor: str, name: str) -> Expr:
    """The step of this depth is ``actor name``."""
    code = s.layout.code(Step(actor, name))
    if code is None:
        return s.const(False)
    return is_choice(s.layout, c, code)


def _any(s: State, items: list[Expr]) -> Expr:
    return z3.Or(items) if items else s.const(False)


def bad_spte_in_obsolete_root(s: State, c: Expr, t: State) -> Expr:
    """``no_spte_in_obsolete_root``: a ``fault.map`` whose vCPU's root is ghost-obsolete."""
    return _any(
        s,
        [z3.And(_took(s, c, v.actor, "fault.map"), s.root(v, "obsolete")) for v in s.layout.vcpus],
    )


def bad_guest_on_obsolete_root(s: State, c: Expr, t: State) -> Expr:
    """``no_guest_on_obsolete_root`` (state): some vCPU in guest mode has a ghost-obsolete root
    while no zapper is between its ``zap.new_gen`` and its ``zap.request``."""
    layout = t.layout
    guest = _any(
        s,
        [z3.And(in_guest(t, v), t.root(v, "loaded"), t.root(v, "obsolete")) for v in layout.vcpus],
    )
    window = _any(s, [t.zapper_in_window(z) for z in layout.zappers])
    return z3.And(guest, z3.Not(window))


def bad_use_after_free(s: State, c: Expr, t: State) -> Expr:
    """``no_use_after_free`` (state): some vCPU holds a freed root."""
    return _any(s, [z3.And(t.root(v, "loaded"), t.root(v, "freed")) for v in t.layout.vcpus])


def bad_stale_pfn(s: State, c: Expr, t: State) -> Expr:
    """``no_stale_pfn``: a ``fault.map`` of a pfn invalidated since the fault read it."""
    return _any(
        s,
        [z3.And(_took(s, c, v.actor, "fault.map"), s.flag(v, "pfn_stale")) for v in s.layout.vcpus],
    )


def bad_null_deref(s: State, c: Expr, t: State) -> Expr:
    """``no_null_deref``: a ``fault.check`` that dereferences the NULL shadow page of a special
    root (the a955cad84cda crash): unguarded obsolete check on a root without sp."""
    if s.layout.knobs.obsolete_sp != "unguarded":
        return s.const(False)
    crash = _any(s, [_took(s, c, v.actor, "fault.check") for v in s.layout.vcpus if not v.has_sp])
    # necessity analysis: with the obsolete-sp check dropped (spec.facts), no dereference
    return unless_dropped(s.layout, "is_page_fault_stale.obsolete_sp", crash, s.const(False))


BAD: Mapping[str, Predicate] = MappingProxyType(
    {
        "no_spte_in_obsolete_root": bad_spte_in_obsolete_root,
        "no_guest_on_obsolete_root": bad_guest_on_obsolete_root,
        "no_use_after_free": bad_use_after_free,
        "no_stale_pfn": bad_stale_pfn,
        "no_null_deref": bad_null_deref,
    }
)
assert tuple(BAD) == INVARIANTS


# --- cover targets ------------------------------------------------------------------------------


def cover_fault_map(s: State, c: Expr, t: State) -> Expr:
    """``fault.map``: the step happens."""
    return _any(s, [_took(s, c, v.actor, "fault.map") for v in s.layout.vcpus])


def cover_zap_obsolete(s: State, c: Expr, t: State) -> Expr:
    """``zap.zap_obsolete``: the step happens."""
    return _any(s, [_took(s, c, z, "zap.zap_obsolete") for z in s.layout.zappers])


def cover_retry_obsolete(s: State, c: Expr, t: State) -> Expr:
    """``retry.obsolete``: a ``fault.check`` finds the fault stale because of part 1 or 2, or a
    ``fault.check_request`` ends the fault."""
    items: list[Expr] = []
    for v in s.layout.vcpus:
        ended = z3.And(
            _took(s, c, v.actor, "fault.check"),
            t.flag(v, "stale") == t.stale_val(STALE_OBSOLETE),
        )
        early = z3.And(_took(s, c, v.actor, "fault.check_request"), request_part(s, v))
        items += [ended, early]
    return _any(s, items)


def cover_retry_notifier(s: State, c: Expr, t: State) -> Expr:
    """``retry.notifier``: a ``fault.check`` finds the fault stale because of part 3."""
    return _any(
        s,
        [
            z3.And(
                _took(s, c, v.actor, "fault.check"),
                t.flag(v, "stale") == t.stale_val(STALE_NOTIFIER),
            )
            for v in s.layout.vcpus
        ],
    )


def cover_enter_after_reload(s: State, c: Expr, t: State) -> Expr:
    """``enter.after_reload``: ``vcpu.enter`` by a vCPU that has done ``vcpu.unload``."""
    return _any(
        s,
        [z3.And(_took(s, c, v.actor, "vcpu.enter"), s.flag(v, "reloaded")) for v in s.layout.vcpus],
    )


COVER: Mapping[str, Predicate] = MappingProxyType(
    {
        "fault.map": cover_fault_map,
        "zap.zap_obsolete": cover_zap_obsolete,
        "retry.obsolete": cover_retry_obsolete,
        "retry.notifier": cover_retry_notifier,
        "enter.after_reload": cover_enter_after_reload,
    }
)
assert tuple(COVER) == COVER_TARGETS


def required_covers(layout: Layout) -> frozenset[str]:
    """The cover targets a proof under this layout must reach to be non-vacuous
    (:func:`kvmmu.vocab.required_covers`, the rule of ``docs/protocol.md`` section 6.5)."""
    return vocab_required_covers(layout.knobs, layout.config)
