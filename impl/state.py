"""The machine state of docs/protocol.md section 6.2, as immutable records.

Every record is a frozen dataclass, so a whole-machine state is hashable (the exhaustive search
keys its visited set on it) and a step builds a new state instead of mutating one. Program
positions are explicit fields (a vCPU's ``pc`` inside the fault path, a zapper's ``pc`` in its
program), so that a state says everything about the future and nothing is hidden in a Python
frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["outside", "guest", "fault", "crashed"]
LockMode = Literal["none", "read", "write"]


@dataclass(frozen=True, slots=True)
class RwLock:
    """``kvm->mmu_lock``, an rwlock: free, write-held by one actor, or read-held by vCPUs."""

    writer: str | None = None
    readers: frozenset[str] = frozenset()

    @property
    def free(self) -> bool:
        """Neither a writer nor readers: what ``write_lock()`` waits for."""
        return self.writer is None and not self.readers

    @property
    def mode(self) -> str:
        """The section 6.7 value of ``kvm.mmu_lock``."""
        if self.writer is not None:
            return "write"
        return "read" if self.readers else "free"

    def write_lock(self, actor: str) -> RwLock:
        return RwLock(writer=actor)

    def read_lock(self, actor: str) -> RwLock:
        return RwLock(readers=self.readers | {actor})

    def unlock(self, actor: str) -> RwLock:
        """``write_unlock()`` or ``read_unlock()`` by ``actor``, whichever it holds."""
        if self.writer == actor:
            return RwLock()
        return RwLock(readers=self.readers - {actor})


@dataclass(frozen=True, slots=True)
class Kvm:
    """The VM-wide part of ``struct kvm`` / ``struct kvm_arch`` the protocol touches."""

    mmu_lock: RwLock = RwLock()
    # the zapper holding kvm->slots_lock (kvm_mmu_zap_all_fast() runs under it), or None
    slots_lock: str | None = None
    mmu_valid_gen: int = 0
    mmu_notifier_count: int = 0
    # K6 ghost (protocol.md 6.11): mmu_notifier_seq >= 2^31, which only an int mmu_seq can see;
    # stays False with is_page_fault_stale.mmu_seq: unsigned_long
    mmu_notifier_seq_bit31: bool = False

    def with_lock(self, lock: RwLock) -> Kvm:
        return Kvm(
            lock,
            self.slots_lock,
            self.mmu_valid_gen,
            self.mmu_notifier_count,
            self.mmu_notifier_seq_bit31,
        )


@dataclass(frozen=True, slots=True)
class Root:
    """A vCPU's root (``vcpu->arch.mmu->root_hpa`` and, if any, its ``struct kvm_mmu_page``).

    A special root (``pae_root`` …) and its children are one record; ``has_sp`` is false exactly
    when ``to_shadow_page()`` would return NULL. ``obsolete`` is the ghost "true generation"
    test (some ``zap.new_gen`` since the load, or invalid); the kernel never reads it.
    """

    kind: str
    has_sp: bool
    gen: int
    obsolete: bool = False
    invalid: bool = False
    freed: bool = False
    spte: bool = False


@dataclass(frozen=True, slots=True)
class Vcpu:
    """One vCPU: its place in ``vcpu_enter_guest()`` / the fault path, its request bit, its root,
    and the locals of the fault in progress (which persist after the fault, unchanged)."""

    mode: Mode = "outside"
    # in mode "fault": the name of the next fault step (e.g. "fault.lock"); "" otherwise
    pc: str = ""
    request: bool = False
    unload_due: bool = False
    root: Root | None = None
    lock: LockMode = "none"
    seq_changed: bool = False
    pfn_stale: bool = False
    stale: bool = False
    reloaded: bool = False  # ghost: has done vcpu.unload at least once


@dataclass(frozen=True, slots=True)
class Zapper:
    """A thread in ``kvm_mmu_zap_all_fast()``: ``pc`` indexes its program (0 = before
    ``zap.lock``), ``zaps`` counts the completed ``zap.lock`` … ``zap.unlock`` runs."""

    pc: int = 0
    zaps: int = 0


@dataclass(frozen=True, slots=True)
class Notifier:
    """The primary MMU's invalidation: between ``mn.start`` and ``mn.end`` when ``started``."""

    started: bool = False
    invalidations: int = 0


@dataclass(frozen=True, slots=True)
class Machine:
    """The whole machine: what a scheduler needs to know to continue from here."""

    kvm: Kvm
    vcpus: tuple[Vcpu, ...]
    zappers: tuple[Zapper, ...]
    notifier: Notifier | None

    # Direct construction rather than dataclasses.replace(): these run on every transition of
    # the exhaustive search, and replace() costs several times more.
    def with_kvm(self, kvm: Kvm) -> Machine:
        return Machine(kvm, self.vcpus, self.zappers, self.notifier)

    def with_vcpus(self, vcpus: tuple[Vcpu, ...]) -> Machine:
        return Machine(self.kvm, vcpus, self.zappers, self.notifier)

    def with_vcpu(self, i: int, vcpu: Vcpu) -> Machine:
        return self.with_vcpus((*self.vcpus[:i], vcpu, *self.vcpus[i + 1 :]))

    def with_zapper(self, i: int, zapper: Zapper) -> Machine:
        zappers = (*self.zappers[:i], zapper, *self.zappers[i + 1 :])
        return Machine(self.kvm, self.vcpus, zappers, self.notifier)


def initial_machine(vcpus: int, zappers: int, notifier: bool) -> Machine:
    """The initial state: lock free, generation 0, every vCPU outside with no root."""
    return Machine(
        kvm=Kvm(),
        vcpus=(Vcpu(),) * vcpus,
        zappers=(Zapper(),) * zappers,
        notifier=Notifier() if notifier else None,
    )


def is_obsolete_sp(root: Root, kvm: Kvm) -> bool:
    """``is_obsolete_sp()`` (arch/x86/kvm/mmu/mmu.c, v5.16): ``role.invalid``, or, for a page
    that is not a TDP MMU page, a ``mmu_valid_gen`` other than the VM's.

    For a special root this is the test on its children (section 5: they collapse into one
    object), which is what ``kvm_zap_obsolete_pages()`` applies to them.
    """
    return root.invalid or (root.kind != "tdp" and root.gen != kvm.mmu_valid_gen)
