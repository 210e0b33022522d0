"""Control flow: the order of the atomic steps inside the multi-step kernel functions.

The kernel functions of ``kernel.py`` are one atomic step each; these straight-line programs say
which step follows which (protocol.md 6.3), per the knobs that reorder or add steps. The program
position of an actor is explicit in the state (``Vcpu.pc``, ``Zapper.pc``).
"""

from __future__ import annotations


def direct_page_fault_program(request_before_lock: bool) -> tuple[str, ...]:
    """The steps of ``direct_page_fault()`` (arch/x86/kvm/mmu/mmu.c, v5.16): snapshot
    ``mmu_notifier_seq``, ``kvm_faultin_pfn()``, take ``mmu_lock``, ``is_page_fault_stale()``,
    ``__direct_map()``, unlock. A stale verdict skips the map; what-if
    ``stale_check.request_before_lock`` tests the request before taking the lock."""
    early = ("fault.check_request",) if request_before_lock else ()
    return (
        "fault.snapshot",
        "fault.faultin",
        *early,
        "fault.lock",
        "fault.check",
        "fault.map",
        "fault.unlock",
    )


def kvm_mmu_zap_all_fast_program(
    request_before_gen: bool, unlock_between_gen_and_request: bool, zap_yield: bool
) -> tuple[str, ...]:
    """The steps of one ``kvm_mmu_zap_all_fast()`` run (mmu.c, v5.16): ``write_lock()``, flip
    ``mmu_valid_gen`` (and ``kvm_tdp_mmu_invalidate_all_roots()``),
    ``kvm_reload_remote_mmus()``, ``kvm_zap_obsolete_pages()``, ``write_unlock()``; what-ifs
    swap the middle two, unlock between them, or let ``kvm_zap_obsolete_pages()`` yield.

    ``zap.yield`` marks an optional detour: at that position the zapper may also go straight to
    ``zap.zap_obsolete``.
    """
    first, second = ("zap.new_gen", "zap.request")
    if request_before_gen:
        first, second = second, first
    middle = ("zap.unlock_mid", "zap.relock") if unlock_between_gen_and_request else ()
    detour = ("zap.yield", "zap.relock") if zap_yield else ()
    return ("zap.lock", first, *middle, second, *detour, "zap.zap_obsolete", "zap.unlock")
