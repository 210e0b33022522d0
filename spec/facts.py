"""Named facts of the transition relation, for the necessity analysis (``kvmmu why``).

A *fact* is one guard, lock fact or ordering that the protocol (``docs/protocol.md`` section 6.3)
relies on, named in the kernel's terms: e.g. ``is_page_fault_stale.reload_request``, part 2 of
``is_page_fault_stale()`` (18c841e1f411). Each fact can be *dropped*: the transition relation is
then built without that guard, lock fact or ordering, and everything else stays as it is.

How facts enter the encoding: a normal encoding (``make_layout(..., relax=())``, what every
proof uses) has no fact literals at all; every fact holds by construction, and the encoding is
exactly the one of section 6.3 (the hooks are Python-level switches, at no cost). An encoding
built with ``relax=names`` has one Bool *assumption literal* per named fact (``fact!NAME``,
``Layout.relaxed``): where the literal is true the fact holds, where it is false the fact is
dropped. A solver asked under all literals as assumptions answers for the unmodified model, and
its unsat core names the facts a proof needs (:mod:`spec.why`).

Only the facts a problem *has* are offered (:func:`offered`): those of its variant (the
request test exists only with ``stale_check.reload_request`` other than ``none``) performed by an
actor its configuration has (zapper facts need a zapper, the notifier's facts the notifier).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import z3

from kvmmu.vocab import Config

if TYPE_CHECKING:
    from kvmmu.vocab import Knobs
    from spec.variants import Layout

Expr = Any  # a z3.ExprRef


@dataclass(frozen=True)
class Fact:
    """One named fact: what it says, the kernel code it refers to, and what dropping it does."""

    name: str
    meaning: str
    kernel: str
    dropped: str
    applies: Callable[[Knobs, Config], bool]


def _has_zapper(knobs: Knobs, config: Config) -> bool:
    return config.zappers > 0


CATALOG: tuple[Fact, ...] = (
    Fact(
        "is_page_fault_stale.obsolete_sp",
        "part 1 of the stale check: the root's shadow page is obsolete (role.invalid, or an old "
        "mmu_valid_gen)",
        "is_page_fault_stale(): sp && is_obsolete_sp(vcpu->kvm, sp) (a955cad84cda, 18c841e1f411)",
        "part 1 is false (under obsolete_sp: unguarded, a root without sp no longer crashes)",
        lambda k, c: k.obsolete_sp != "none",
    ),
    Fact(
        "is_page_fault_stale.reload_request",
        "part 2 of the stale check: a root without sp with a reload request pending",
        "is_page_fault_stale(): !sp && kvm_test_request(KVM_REQ_MMU_RELOAD, vcpu) (18c841e1f411)",
        "part 2 is false (also in fault.check_request with stale_check.request_before_lock)",
        lambda k, c: k.reload_request != "none",
    ),
    Fact(
        "is_page_fault_stale.mmu_notifier",
        "part 3 of the stale check: an invalidation in progress or the sequence changed",
        "is_page_fault_stale() -> mmu_notifier_retry_hva(vcpu->kvm, mmu_seq, hva)",
        "part 3 is false",
        lambda k, c: k.mmu_notifier and c.notifier,
    ),
    Fact(
        "fault.holds_mmu_lock",
        "the fault path takes mmu_lock before the stale check and holds it to the map: it "
        "waits until no writer (and, for write, no reader) holds it",
        "direct_page_fault() / FNAME(page_fault): write_lock() or read_lock(&vcpu->kvm->mmu_lock)",
        "fault.lock does not wait: the check and the map may run inside a zapper's or another "
        "fault's critical section (the vCPU still counts as a holder for the others)",
        lambda k, c: True,
    ),
    Fact(
        "vcpu_enter_guest.request_check",
        "no VM-entry with a request pending",
        "vcpu_enter_guest(): kvm_vcpu_exit_request() (and kvm_request_pending()) before VM-entry",
        "vcpu.enter ignores the request bit",
        lambda k, c: True,
    ),
    Fact(
        "kvm_mmu_load.takes_mmu_lock",
        "a new root is allocated under mmu_lock (write)",
        "kvm_mmu_load() -> kvm_mmu_alloc_direct_roots() / mmu_alloc_shadow_roots() under "
        "write_lock(&vcpu->kvm->mmu_lock)",
        "vcpu.load does not wait for mmu_lock",
        lambda k, c: True,
    ),
    Fact(
        "kvm_mmu_unload.drops_root",
        "the unload after the request drops the vCPU's root",
        "kvm_mmu_unload() -> kvm_mmu_free_roots() (request: reload)",
        "vcpu.unload keeps the root",
        lambda k, c: k.request == "reload",
    ),
    Fact(
        "kvm_mmu_free_obsolete_roots.drops_obsolete_root",
        "the unload after the request drops the vCPU's root if it has no sp or is obsolete",
        "kvm_mmu_free_obsolete_roots() -> is_obsolete_root() (527d5cd7eece, request: "
        "free_obsolete)",
        "vcpu.unload keeps the root",
        lambda k, c: k.request == "free_obsolete",
    ),
    Fact(
        "zap.no_unlock_between_gen_and_request",
        "the zapper holds mmu_lock from the generation change to the request",
        "kvm_mmu_zap_all_fast(): mmu_valid_gen flip and kvm_reload_remote_mmus() in one "
        "write_lock(&kvm->mmu_lock) section",
        "the zapper may drop and re-take mmu_lock between them (zap.unlock_mid, zap.relock)",
        lambda k, c: _has_zapper(k, c) and not k.unlock_between_gen_and_request,
    ),
    Fact(
        "zap.gen_before_request",
        "the generation changes before the request is made",
        "kvm_mmu_zap_all_fast(): mmu_valid_gen flip, then kvm_reload_remote_mmus()",
        "the zapper may make the request first",
        lambda k, c: _has_zapper(k, c) and not k.request_before_gen,
    ),
    Fact(
        "zap.request_kicks_guest",
        "the request kicks every vCPU in guest mode out (and waits for it)",
        "kvm_make_all_cpus_request(): kvm_kick_vcpu()/smp_call_function_many() with "
        "KVM_REQUEST_WAIT",
        "zap.request sets the request bits only",
        _has_zapper,
    ),
    Fact(
        "zap.invalidates_tdp_roots",
        "the generation change marks every TDP root role.invalid",
        "kvm_mmu_zap_all_fast() -> kvm_tdp_mmu_invalidate_all_roots()",
        "TDP roots stay valid at zap.new_gen",
        _has_zapper,
    ),
    Fact(
        "kvm_zap_obsolete_pages.invalidates_in_use_roots",
        "an obsolete root still in use is marked role.invalid",
        "kvm_zap_obsolete_pages() -> __kvm_mmu_prepare_zap_page(): sp->role.invalid = 1",
        "zap.zap_obsolete removes the SPTE but leaves role.invalid clear",
        _has_zapper,
    ),
    Fact(
        "kvm_zap_obsolete_pages.respects_root_count",
        "an obsolete root still in use (root_count > 0) is not freed",
        "__kvm_mmu_prepare_zap_page(): a root with root_count is only invalidated, "
        "kvm_mmu_commit_zap_page() frees the others",
        "zap.zap_obsolete may free a root a vCPU holds",
        lambda k, c: _has_zapper(k, c) and k.respect_root_count,
    ),
    Fact(
        "slots_lock.serializes_zaps",
        "one zapper at a time",
        "kvm_mmu_zap_all_fast() runs under mutex_lock(&kvm->slots_lock) (memslot updates)",
        "zap.lock does not wait for slots_lock",
        lambda k, c: k.serialized and c.zappers == 2,
    ),
    Fact(
        "mmu_notifier.takes_mmu_lock",
        "the notifier changes mmu_notifier_count/seq and zaps SPTEs under mmu_lock (write)",
        "kvm_mmu_notifier_invalidate_range_start()/_end(): KVM_MMU_LOCK(kvm)",
        "mn.start and mn.end do not wait for mmu_lock",
        lambda k, c: c.notifier,
    ),
)

FACTS: Mapping[str, Fact] = MappingProxyType({f.name: f for f in CATALOG})

# facts that change the zapper's program (spec.variants.zapper_program), not a guard
PROGRAM_FACTS: tuple[str, ...] = ("zap.no_unlock_between_gen_and_request", "zap.gen_before_request")


def offered(knobs: Knobs, config: Config) -> tuple[str, ...]:
    """The names of the facts this variant and configuration have, in catalog order."""
    return tuple(f.name for f in CATALOG if f.applies(knobs, config))


def literal(layout: Layout, name: str) -> Expr | None:
    """The assumption literal of fact ``name``, or None when the fact is not relaxed (it holds,
    and the encoding is the plain one)."""
    return layout.relaxed.get(name)


def unless_dropped(layout: Layout, name: str, held: Expr, dropped: Expr) -> Expr:
    """``held`` where fact ``name`` holds, ``dropped`` where it is dropped: just ``held`` in a
    plain encoding, ``If(fact!name, held, dropped)`` in a relaxed one."""
    lit = literal(layout, name)
    return held if lit is None else z3.If(lit, held, dropped)


def guard(layout: Layout, name: str, condition: Expr) -> Expr:
    """A guard conjunct that fact ``name`` imposes: ``condition``, or ``Implies(fact!name,
    condition)`` in a relaxed encoding."""
    lit = literal(layout, name)
    return condition if lit is None else z3.Implies(lit, condition)


def make_literals(ctx: Any, names: tuple[str, ...]) -> Mapping[str, Expr]:
    """One fresh Bool literal per fact, in ``ctx``."""
    for name in names:
        if name not in FACTS:
            raise ValueError(f"unknown fact {name!r} (known: {', '.join(FACTS)})")
    return MappingProxyType({name: z3.Bool(f"fact!{name}", ctx) for name in names})
