"""The kernel functions of the obsolete-root protocol, one atomic step each (protocol.md 6.3).

Every function here is named after the kernel function (or the part of it) that it models and
cites it, from arch/x86/kvm/mmu/mmu.c and arch/x86/kvm/x86.c of v5.16 (v5.18 for
``kvm_mmu_free_obsolete_roots()``) and virt/kvm/kvm_main.c for the notifier. Each is a pure
function ``(params, machine, actor index) -> machine | None``: None means "not enabled" (the
actor is elsewhere, or the guard, e.g. a lock, does not hold); otherwise the result is the new
state, with exactly the effect of section 6.3 and every other field unchanged.

Control flow between the steps (which step comes next) is ``programs.py``'s, carried by the
explicit program positions in the state: a vCPU's ``mode``/``pc`` (``Params.fault_next``) and a
zapper's ``pc`` into ``Params.zap_program``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from impl.params import Params
from impl.state import Kvm, Machine, Notifier, Root, Vcpu, Zapper, is_obsolete_sp

StepFn = Callable[[Params, Machine, int], Machine | None]
Verdict = Literal["fresh", "obsolete_sp", "request", "notifier", "crash"]

ZAPPER_NAMES = ("zapper", "zapper1")


def vcpu_name(i: int) -> str:
    return f"vcpu{i}"


# --- vCPU: the vcpu_enter_guest() loop ----------------------------------------------------------


def kvm_check_request_mmu_reload(p: Params, m: Machine, i: int) -> Machine | None:
    """``vcpu.check_request``: in ``vcpu_enter_guest()`` (x86.c),
    ``if (kvm_check_request(KVM_REQ_MMU_RELOAD, vcpu)) kvm_mmu_unload(vcpu);`` -- the request
    bit is cleared here, and the unload it asks for becomes due (the next step of the vCPU).
    With ``kvm_mmu_free_obsolete_roots.is_obsolete_root: lockless`` (v5.18, 527d5cd7eece) the
    unload is due only if the lockless ``is_obsolete_root()`` says the root is obsolete now."""
    v = m.vcpus[i]
    if v.mode != "outside" or v.unload_due or not v.request:
        return None
    due = True
    if p.knobs.request == "free_obsolete" and p.knobs.is_obsolete_root == "lockless":
        # v5.18 __kvm_mmu_free_obsolete_roots(): roots_to_free is computed here, without
        # mmu_lock; nothing to free means nothing more happens for this request (K4)
        due = v.root is not None and is_obsolete_root(m.kvm, v.root)
    return m.with_vcpu(i, replace(v, request=False, unload_due=due))


def _unload(m: Machine, i: int, drop: Callable[[Root], bool]) -> Machine | None:
    """The common part of ``kvm_mmu_unload()`` and ``kvm_mmu_free_obsolete_roots()``: both end
    in ``kvm_mmu_free_roots()``, which takes and drops ``mmu_lock`` for write around
    ``mmu_free_root_page()``: the root's ``root_count`` drops to 0, an invalid root is freed
    (``kvm_mmu_prepare_zap_page()`` + commit); a valid one stays on the list, reachable by
    nobody, and the model forgets it either way."""
    v = m.vcpus[i]
    if v.mode != "outside" or not v.unload_due or not m.kvm.mmu_lock.free:
        return None
    root = v.root
    if root is not None and drop(root):
        root = None
    return m.with_vcpu(i, replace(v, unload_due=False, reloaded=True, root=root))


def kvm_mmu_unload(p: Params, m: Machine, i: int) -> Machine | None:
    """``vcpu.unload`` with ``request: reload`` (<= v5.17): ``kvm_mmu_unload()`` (mmu.c) frees
    every root of the vCPU."""
    return _unload(m, i, lambda root: True)


def is_obsolete_root(kvm: Kvm, root: Root) -> bool:
    """``is_obsolete_root()`` (mmu.c, v5.18): a root without a shadow page is treated as
    obsolete (a false positive the kernel accepts), else ``is_obsolete_sp()``."""
    return not root.has_sp or is_obsolete_sp(root, kvm)


def kvm_mmu_free_obsolete_roots(p: Params, m: Machine, i: int) -> Machine | None:
    """``vcpu.unload`` with ``request: free_obsolete`` (v5.18+): ``kvm_mmu_free_obsolete_roots()``
    (mmu.c, 527d5cd7eece) frees only the roots for which ``is_obsolete_root()`` holds. With
    ``kvm_mmu_free_obsolete_roots.is_obsolete_root: lockless`` that test was made at
    ``vcpu.check_request`` (``kvm_check_request_mmu_reload``): the root held is the one to free."""
    if p.knobs.is_obsolete_root == "lockless":
        return _unload(m, i, lambda root: True)
    return _unload(m, i, lambda root: is_obsolete_root(m.kvm, root))


def kvm_mmu_load(p: Params, m: Machine, i: int) -> Root:
    """``kvm_mmu_load()`` (mmu.c): allocate the vCPU's root under ``write_lock(&mmu_lock)``
    (``mmu_alloc_direct_roots()`` / ``mmu_alloc_special_roots()`` /
    ``kvm_tdp_mmu_get_vcpu_root_hpa()``), stamped with the current ``mmu_valid_gen``."""
    kind = p.config.vcpus[i]
    return Root(kind=kind, has_sp=p.has_sp(kind), gen=m.kvm.mmu_valid_gen)


def kvm_mmu_reload(p: Params, m: Machine, i: int) -> Machine | None:
    """``vcpu.load``: ``kvm_mmu_reload()`` (mmu.h) calls ``kvm_mmu_load()`` only when there is
    no valid root; the allocation takes ``mmu_lock`` for write, so it waits for a free lock."""
    v = m.vcpus[i]
    if v.mode != "outside" or v.unload_due or v.root is not None or not m.kvm.mmu_lock.free:
        return None
    return m.with_vcpu(i, replace(v, root=kvm_mmu_load(p, m, i)))


def vcpu_enter_guest(p: Params, m: Machine, i: int) -> Machine | None:
    """``vcpu.enter``: VM-entry at the end of ``vcpu_enter_guest()`` (x86.c), after
    ``kvm_mmu_reload()``, when ``kvm_vcpu_exit_request()`` sees no pending request."""
    v = m.vcpus[i]
    if v.mode != "outside" or v.unload_due or v.root is None or v.request:
        return None
    return m.with_vcpu(i, replace(v, mode="guest"))


def kvm_mmu_page_fault(p: Params, m: Machine, i: int) -> Machine | None:
    """``vcpu.fault``: an EPT/NPT violation exits the guest and ``kvm_mmu_page_fault()`` (mmu.c)
    starts a fault on the one modelled gfn."""
    v = m.vcpus[i]
    if v.mode != "guest":
        return None
    return m.with_vcpu(i, replace(v, mode="fault", pc="fault.snapshot"))  # direct_page_fault()


# --- vCPU: the fault path, direct_page_fault() (mmu.c, v5.16) -----------------------------------


def _at(v: Vcpu, step: str) -> bool:
    return v.mode == "fault" and v.pc == step


def direct_page_fault_snapshot(p: Params, m: Machine, i: int) -> Machine | None:
    """``fault.snapshot``: ``mmu_seq = vcpu->kvm->mmu_notifier_seq; smp_rmb();`` in
    ``direct_page_fault()``. The model keeps only "changed since the snapshot"."""
    v = m.vcpus[i]
    if not _at(v, "fault.snapshot"):
        return None
    return m.with_vcpu(i, replace(v, seq_changed=False, pc=p.fault_next[v.pc]))


def kvm_faultin_pfn(p: Params, m: Machine, i: int) -> Machine | None:
    """``fault.faultin``: ``kvm_faultin_pfn()`` (mmu.c) resolves the host pfn without
    ``mmu_lock``; during an invalidation (``mmu_notifier_count > 0``) it may be the old pfn."""
    v = m.vcpus[i]
    if not _at(v, "fault.faultin"):
        return None
    pfn_stale = m.kvm.mmu_notifier_count > 0
    return m.with_vcpu(i, replace(v, pfn_stale=pfn_stale, pc=p.fault_next[v.pc]))


def reload_request_pending(p: Params, v: Vcpu) -> bool:
    """Part 2 of ``is_page_fault_stale()`` (18c841e1f411):
    ``!sp && kvm_test_request(KVM_REQ_MMU_RELOAD, vcpu)``; false with ``reload_request: none``."""
    assert v.root is not None
    return p.knobs.reload_request != "none" and not v.root.has_sp and v.request


def direct_page_fault_check_request(p: Params, m: Machine, i: int) -> Machine | None:
    """``fault.check_request`` (what-if ``stale_check.request_before_lock``): part 2 of
    ``is_page_fault_stale()`` moved before taking ``mmu_lock``. Stale ends the fault here with
    ``RET_PF_RETRY`` (no lock is held); ``check`` consumes the request like
    ``kvm_check_request()``."""
    v = m.vcpus[i]
    if not _at(v, "fault.check_request"):
        return None
    if reload_request_pending(p, v):
        request = v.request and p.knobs.reload_request != "check"
        return m.with_vcpu(i, replace(v, request=request, mode="outside", pc=""))
    return m.with_vcpu(i, replace(v, pc=p.fault_next[v.pc]))


def fault_lock_mode(p: Params, kind: str) -> Literal["read", "write"]:
    """``direct_page_fault()`` takes ``read_lock()`` for a TDP MMU fault, ``write_lock()``
    otherwise (``fault_lock: auto``); the knob can force either."""
    if p.knobs.fault_lock == "auto":
        return "read" if kind == "tdp" else "write"
    return "read" if p.knobs.fault_lock == "read" else "write"


def direct_page_fault_lock(p: Params, m: Machine, i: int) -> Machine | None:
    """``fault.lock``: ``read_lock(&vcpu->kvm->mmu_lock)`` or ``write_lock(...)`` in
    ``direct_page_fault()``; write waits for a free lock, read only for the writer."""
    v = m.vcpus[i]
    if not _at(v, "fault.lock"):
        return None
    assert v.root is not None
    lock = m.kvm.mmu_lock
    name = vcpu_name(i)
    if fault_lock_mode(p, v.root.kind) == "write":
        if not lock.free:
            return None
        m = m.with_kvm(m.kvm.with_lock(lock.write_lock(name)))
        return m.with_vcpu(i, replace(v, lock="write", pc=p.fault_next[v.pc]))
    if lock.writer is not None:
        return None
    m = m.with_kvm(m.kvm.with_lock(lock.read_lock(name)))
    return m.with_vcpu(i, replace(v, lock="read", pc=p.fault_next[v.pc]))


def page_fault_staleness(p: Params, m: Machine, v: Vcpu) -> Verdict:
    """The verdict of ``is_page_fault_stale()`` (mmu.c, v5.16, 18c841e1f411), part by part in
    the kernel's short-circuit order; "crash" is a955cad84cda's NULL ``sp`` dereference."""
    root = v.root
    assert root is not None
    # 1. the root's shadow page is obsolete
    if p.knobs.obsolete_sp == "guarded" and root.has_sp and is_obsolete_sp(root, m.kvm):
        return "obsolete_sp"
    if p.knobs.obsolete_sp == "unguarded":
        if not root.has_sp:
            return "crash"  # is_obsolete_sp(vcpu->kvm, NULL)
        if is_obsolete_sp(root, m.kvm):
            return "obsolete_sp"
    # 2. a root without a shadow page and a pending reload request (unless checked before lock)
    if not p.knobs.request_before_lock and reload_request_pending(p, v):
        return "request"
    # 3. mmu_notifier_retry_hva(vcpu->kvm, mmu_seq, fault->hva)
    if p.knobs.mmu_notifier and (
        m.kvm.mmu_notifier_count > 0 or v.seq_changed or mmu_seq_round_trip_lost(p, m.kvm)
    ):
        return "notifier"
    return "fresh"


def mmu_seq_round_trip_lost(p: Params, kvm: Kvm) -> bool:
    """K6: ``is_page_fault_stale(vcpu, fault, int mmu_seq)`` (mmu.c, v5.16 to v6.2, since
    a955cad84cda) truncates the ``unsigned long`` snapshot to an ``int``;
    ``mmu_notifier_retry_hva()`` sign-extends it back and compares it with
    ``kvm->mmu_notifier_seq``. From 2^31 on the round trip never gives the sequence back, so the
    comparison says "changed" at every fault (fixed upstream in v6.3 by ba6e3fe25543, which keeps
    ``fault->mmu_seq`` unsigned long; in 6.1.y by "Fix an sign-extension bug with mmu_seq")."""
    return p.knobs.mmu_seq == "int" and kvm.mmu_notifier_seq_bit31


def is_page_fault_stale(p: Params, m: Machine, i: int) -> Machine | None:
    """``fault.check``: ``is_page_fault_stale()`` under ``mmu_lock``. A stale fault goes to the
    unlock and returns ``RET_PF_RETRY``; a NULL-``sp`` dereference crashes the vCPU with the lock
    held; ``kvm_check_request()`` (``reload_request: check``) consumes the request bit."""
    v = m.vcpus[i]
    if not _at(v, "fault.check"):
        return None
    verdict = page_fault_staleness(p, m, v)
    if verdict == "crash":
        return m.with_vcpu(i, replace(v, mode="crashed", pc=""))
    request = v.request and not (verdict == "request" and p.knobs.reload_request == "check")
    stale = verdict != "fresh"
    nxt = "fault.unlock" if stale else p.fault_next[v.pc]  # a stale fault skips the map
    return m.with_vcpu(i, replace(v, request=request, stale=stale, pc=nxt))


def direct_map(p: Params, m: Machine, i: int) -> Machine | None:
    """``fault.map``: ``__direct_map()`` / ``kvm_tdp_mmu_map()`` (mmu.c, tdp_mmu.c) installs the
    SPTE under the vCPU's current root (for a special root: in its child)."""
    v = m.vcpus[i]
    if not _at(v, "fault.map"):
        return None
    assert v.root is not None
    root = replace(v.root, spte=True)
    return m.with_vcpu(i, replace(v, root=root, pc=p.fault_next[v.pc]))


def direct_page_fault_unlock(p: Params, m: Machine, i: int) -> Machine | None:
    """``fault.unlock``: ``read_unlock()``/``write_unlock()`` at the end of
    ``direct_page_fault()``, returning ``RET_PF_FIXED`` or ``RET_PF_RETRY`` to the loop."""
    v = m.vcpus[i]
    if not _at(v, "fault.unlock"):
        return None
    m = m.with_kvm(m.kvm.with_lock(m.kvm.mmu_lock.unlock(vcpu_name(i))))
    return m.with_vcpu(i, replace(v, lock="none", mode="outside", pc=""))


# --- zapper: kvm_mmu_zap_all_fast() (mmu.c, v5.16) -----------------------------------------------


def _zapper_at(p: Params, m: Machine, i: int, step: str) -> Zapper | None:
    z = m.zappers[i]
    return z if p.zap_program[z.pc] == step else None


def _advance(m: Machine, i: int, z: Zapper, kvm: Kvm | None = None) -> Machine:
    """The zapper moves to the next position of its program (with a new ``kvm`` if given)."""
    if kvm is not None:
        m = m.with_kvm(kvm)
    return m.with_zapper(i, replace(z, pc=z.pc + 1))


def kvm_mmu_zap_all_fast_lock(p: Params, m: Machine, i: int) -> Machine | None:
    """``zap.lock``: a memslot update holds ``kvm->slots_lock`` (``kvm_set_memslot()``), then
    ``kvm_mmu_zap_all_fast()`` does ``write_lock(&kvm->mmu_lock)``."""
    z = _zapper_at(p, m, i, "zap.lock")
    if z is None or (p.config.max_zaps is not None and z.zaps >= p.config.max_zaps):
        return None
    if not m.kvm.mmu_lock.free or (p.knobs.serialized and m.kvm.slots_lock is not None):
        return None
    name = ZAPPER_NAMES[i]
    slots = name if p.knobs.serialized else m.kvm.slots_lock
    kvm = replace(m.kvm, mmu_lock=m.kvm.mmu_lock.write_lock(name), slots_lock=slots)
    return _advance(m, i, z, kvm)


def kvm_tdp_mmu_invalidate_all_roots(v: Vcpu) -> Vcpu:
    """``kvm_tdp_mmu_invalidate_all_roots()`` (tdp_mmu.c) sets ``role.invalid`` on every TDP
    root; the ghost marks every loaded root obsolete (a new "true generation")."""
    if v.root is None:
        return v
    invalid = v.root.invalid or v.root.kind == "tdp"
    return replace(v, root=replace(v.root, obsolete=True, invalid=invalid))


def kvm_mmu_zap_all_fast_new_gen(p: Params, m: Machine, i: int) -> Machine | None:
    """``zap.new_gen``: ``kvm->arch.mmu_valid_gen = kvm->arch.mmu_valid_gen ? 0 : 1;`` (or a
    counter, what-if ``generation: counter``), then ``kvm_tdp_mmu_invalidate_all_roots()``."""
    z = _zapper_at(p, m, i, "zap.new_gen")
    if z is None:
        return None
    gen = m.kvm.mmu_valid_gen
    gen = gen + 1 if p.knobs.generation == "counter" else 1 - gen
    m = m.with_vcpus(tuple(kvm_tdp_mmu_invalidate_all_roots(v) for v in m.vcpus))
    return _advance(m, i, z, replace(m.kvm, mmu_valid_gen=gen))


def kvm_reload_remote_mmus(p: Params, m: Machine, i: int) -> Machine | None:
    """``zap.request``: ``kvm_reload_remote_mmus()`` = ``kvm_make_all_cpus_request(kvm,
    KVM_REQ_MMU_RELOAD)`` (kvm_main.c) sets every vCPU's request bit and IPIs the vCPUs in guest
    mode out of it (and waits for them)."""
    z = _zapper_at(p, m, i, "zap.request")
    if z is None:
        return None
    vcpus = tuple(
        replace(v, request=True, mode="outside" if v.mode == "guest" else v.mode) for v in m.vcpus
    )
    return _advance(m.with_vcpus(vcpus), i, z)


def kvm_mmu_zap_all_fast_unlock_mid(p: Params, m: Machine, i: int) -> Machine | None:
    """``zap.unlock_mid`` (what-if ``zap.unlock_between_gen_and_request``): a
    ``write_unlock(&kvm->mmu_lock)`` between the generation change and the request, the very
    thing Paolo's "no unlock in between" argument rules out."""
    z = _zapper_at(p, m, i, "zap.unlock_mid")
    if z is None:
        return None
    return _advance(m, i, z, m.kvm.with_lock(m.kvm.mmu_lock.unlock(ZAPPER_NAMES[i])))


def kvm_zap_obsolete_pages_yield(p: Params, m: Machine, i: int) -> Machine | None:
    """``zap.yield`` (what-if ``zap.yield``): ``cond_resched_rwlock_write(&kvm->mmu_lock)`` in
    ``kvm_zap_obsolete_pages()`` drops the lock (taken again by ``zap.relock``)."""
    z = _zapper_at(p, m, i, "zap.yield")
    if z is None:
        return None
    return _advance(m, i, z, m.kvm.with_lock(m.kvm.mmu_lock.unlock(ZAPPER_NAMES[i])))


def kvm_mmu_zap_all_fast_relock(p: Params, m: Machine, i: int) -> Machine | None:
    """``zap.relock``: ``write_lock(&kvm->mmu_lock)`` again after ``zap.unlock_mid`` or
    ``zap.yield``."""
    z = _zapper_at(p, m, i, "zap.relock")
    if z is None or not m.kvm.mmu_lock.free:
        return None
    return _advance(m, i, z, m.kvm.with_lock(m.kvm.mmu_lock.write_lock(ZAPPER_NAMES[i])))


def kvm_zap_obsolete_pages(p: Params, m: Machine, i: int) -> Machine | None:
    """``zap.zap_obsolete``: ``kvm_zap_obsolete_pages()`` (mmu.c) + ``kvm_mmu_commit_zap_page()``.
    ``__kvm_mmu_prepare_zap_page()`` zaps the page's SPTEs; a root still in use
    (``root_count > 0``) is only marked ``role.invalid`` and freed by its last user. With
    ``zap.respect_root_count: false`` the in-use root is freed instead (the bug the knob plants).
    May also be taken directly from the ``zap.yield`` position (the yield is optional)."""
    z = m.zappers[i]
    if p.zap_program[z.pc] not in ("zap.zap_obsolete", "zap.yield"):
        return None
    kvm = m.kvm

    def zap(v: Vcpu) -> Vcpu:
        if v.root is None or not is_obsolete_sp(v.root, kvm):
            return v
        if p.knobs.respect_root_count:
            return replace(v, root=replace(v.root, spte=False, invalid=True))
        # __kvm_mmu_prepare_zap_page() sets role.invalid whether or not it frees the page
        return replace(v, root=replace(v.root, spte=False, invalid=True, freed=True))

    m = m.with_vcpus(tuple(zap(v) for v in m.vcpus))
    return m.with_zapper(i, replace(z, pc=p.zap_program.index("zap.zap_obsolete") + 1))


def kvm_mmu_zap_all_fast_unlock(p: Params, m: Machine, i: int) -> Machine | None:
    """``zap.unlock``: ``write_unlock(&kvm->mmu_lock)`` at the end of ``kvm_mmu_zap_all_fast()``
    and the memslot update's ``mutex_unlock(&kvm->slots_lock)``; the zap is done."""
    z = _zapper_at(p, m, i, "zap.unlock")
    if z is None:
        return None
    name = ZAPPER_NAMES[i]
    slots = None if m.kvm.slots_lock == name else m.kvm.slots_lock
    kvm = replace(m.kvm, mmu_lock=m.kvm.mmu_lock.unlock(name), slots_lock=slots)
    return m.with_kvm(kvm).with_zapper(i, Zapper(pc=0, zaps=z.zaps + 1))


# --- notifier: kvm_mmu_notifier_invalidate_range_start/end() (virt/kvm/kvm_main.c) ---------------


def kvm_mmu_notifier_invalidate_range_start(p: Params, m: Machine, i: int) -> Machine | None:
    """``mn.start``: under ``mmu_lock`` (write), ``kvm_inc_notifier_count()`` and
    ``kvm_unmap_gfn_range()`` zap the gfn's SPTEs in every root; the old pfn is then invalid,
    so every pfn read so far by ``kvm_faultin_pfn()`` is stale."""
    n = m.notifier
    bound = p.config.max_invalidations
    if n is None or n.started or (bound is not None and n.invalidations >= bound):
        return None
    if not m.kvm.mmu_lock.free:
        return None

    def invalidate(v: Vcpu) -> Vcpu:
        root = None if v.root is None else replace(v.root, spte=False)
        return replace(v, root=root, pfn_stale=True)

    kvm = replace(m.kvm, mmu_notifier_count=m.kvm.mmu_notifier_count + 1)
    return replace(
        m,
        kvm=kvm,
        vcpus=tuple(invalidate(v) for v in m.vcpus),
        notifier=Notifier(started=True, invalidations=n.invalidations + 1),
    )


def kvm_mmu_notifier_invalidate_range_end(p: Params, m: Machine, i: int) -> Machine | None:
    """``mn.end``: under ``mmu_lock`` (write), ``kvm_dec_notifier_count()``:
    ``mmu_notifier_seq++`` then ``mmu_notifier_count--``; every snapshot is now out of date.
    For K6 (``is_page_fault_stale.mmu_seq: int``) the run starts at ``mmu_notifier_seq`` =
    2^31 - 1, so this increment reaches 2^31 and the sequence stays there or above
    (protocol.md 6.11)."""
    n = m.notifier
    if n is None or not n.started or not m.kvm.mmu_lock.free:
        return None
    kvm = replace(
        m.kvm,
        mmu_notifier_count=m.kvm.mmu_notifier_count - 1,
        mmu_notifier_seq_bit31=m.kvm.mmu_notifier_seq_bit31 or p.knobs.mmu_seq == "int",
    )
    return replace(
        m,
        kvm=kvm,
        vcpus=tuple(replace(v, seq_changed=True) for v in m.vcpus),
        notifier=replace(n, started=False),
    )


# --- the step vocabulary -> kernel function -----------------------------------------------------

_COMMON: dict[str, StepFn] = {
    "vcpu.check_request": kvm_check_request_mmu_reload,
    "vcpu.load": kvm_mmu_reload,
    "vcpu.enter": vcpu_enter_guest,
    "vcpu.fault": kvm_mmu_page_fault,
    "fault.snapshot": direct_page_fault_snapshot,
    "fault.faultin": kvm_faultin_pfn,
    "fault.check_request": direct_page_fault_check_request,
    "fault.lock": direct_page_fault_lock,
    "fault.check": is_page_fault_stale,
    "fault.map": direct_map,
    "fault.unlock": direct_page_fault_unlock,
    "zap.lock": kvm_mmu_zap_all_fast_lock,
    "zap.new_gen": kvm_mmu_zap_all_fast_new_gen,
    "zap.request": kvm_reload_remote_mmus,
    "zap.unlock_mid": kvm_mmu_zap_all_fast_unlock_mid,
    "zap.yield": kvm_zap_obsolete_pages_yield,
    "zap.relock": kvm_mmu_zap_all_fast_relock,
    "zap.zap_obsolete": kvm_zap_obsolete_pages,
    "zap.unlock": kvm_mmu_zap_all_fast_unlock,
    "mn.start": kvm_mmu_notifier_invalidate_range_start,
    "mn.end": kvm_mmu_notifier_invalidate_range_end,
}


def step_functions(p: Params) -> dict[str, StepFn]:
    """Step name -> the kernel function that performs it under the variant ``p``."""
    table = dict(_COMMON)
    table["vcpu.unload"] = (
        kvm_mmu_free_obsolete_roots if p.knobs.request == "free_obsolete" else kvm_mmu_unload
    )
    return table
