"""The mutation run: ``python -m bench.mutants [--jobs N] [--all-checks] [--only NAME]...``.

Each mutant is one small semantic change to ``spec/`` or ``impl/`` (a guard, an effect, a lock
rule, an invariant's definition, a knob's effect), written as a textual patch: ``old`` must
occur exactly once in its file. Each is applied *alone* to a temporary copy of the tree, and the
project's own checks run on that copy, as a user runs them:

1. ``kvmmu conform`` (every conformance case, on the engine the mutant changes: the other
   engine's results are the baseline's),
2. ``kvmmu prove proofs/ --class small`` (the proof obligations of the test suite's class),
3. ``kvmmu diff`` (the presets), then ``kvmmu diff --knobs all --max-vcpus 1`` (every knob
   value, one knob at a time from each preset).

A check *catches* a mutant when it fails (any exit status but 0). By default the checks of a
mutant stop at the first that catches it (``--all-checks`` runs them all, to see which checks
catch what). A mutant marked *equivalent* changes no behaviour that any check can observe (the
reason is given beside it); it is listed, and run only with ``--run-equivalent`` (reported as a
contradiction if some check catches it).

A catch counts only if the unmutated tree passes the same check: each check runs once on the
unmutated copy the first time a mutant reaches it (so the long knob sweep runs only if some
mutant gets that far), and a failing baseline stops the run. The score is the number of
non-equivalent mutants caught; the command exits 0 when every one is caught, 1 when some
survive, 2 on bad arguments or a failing baseline. ``--json FILE`` writes every result.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# what the copy needs: the three packages, the cases and obligations they are checked against
COPIED = ("kvmmu", "spec", "impl", "conformance", "proofs", "pyproject.toml")
CHECK_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Mutant:
    """One semantic change: replace ``old`` (exactly once in ``path``) by ``new``."""

    name: str
    path: str
    old: str
    new: str
    what: str
    equivalent: str = ""  # why no check can observe it, when it is an equivalent mutant


@dataclass(frozen=True)
class Check:
    name: str
    argv: tuple[str, ...]


CHECKS: tuple[Check, ...] = (
    Check("conform", ("conform", "--json")),
    Check("prove", ("prove", "proofs/", "--class", "small", "--json")),
    Check("diff", ("diff", "--json")),
    Check("diff-knobs", ("diff", "--knobs", "all", "--max-vcpus", "1", "--json")),
)


def _m(name: str, path: str, old: str, new: str, what: str, equivalent: str = "") -> Mutant:
    return Mutant(name, path, old, new, what, equivalent)


K = "impl/kernel.py"
S = "spec/steps.py"
ST = "spec/state.py"
INV = "spec/invariants.py"

MUTANTS: tuple[Mutant, ...] = (
    # --- impl: the vcpu_enter_guest() loop ----------------------------------------------------
    _m(
        "impl.check_request.keeps_bit",
        K,
        "return m.with_vcpu(i, replace(v, request=False, unload_due=due))",
        "return m.with_vcpu(i, replace(v, request=True, unload_due=due))",
        "vcpu.check_request does not clear the request bit",
    ),
    _m(
        "impl.check_request.ignores_unload_due",
        K,
        'if v.mode != "outside" or v.unload_due or not v.request:',
        'if v.mode != "outside" or not v.request:',
        "vcpu.check_request is enabled while an unload is due",
    ),
    _m(
        "impl.unload.no_lock",
        K,
        'if v.mode != "outside" or not v.unload_due or not m.kvm.mmu_lock.free:',
        'if v.mode != "outside" or not v.unload_due:',
        "vcpu.unload does not take mmu_lock",
    ),
    _m(
        "impl.unload.keeps_root",
        K,
        'every root of the vCPU."""\n    return _unload(m, i, lambda root: True)',
        'every root of the vCPU."""\n    return _unload(m, i, lambda root: False)',
        "kvm_mmu_unload() (request: reload) keeps the root",
    ),
    _m(
        "impl.free_obsolete.drops_valid_sp_root",
        K,
        "return not root.has_sp or is_obsolete_sp(root, kvm)",
        "return True",
        "request: free_obsolete drops every root, obsolete or not",
    ),
    _m(
        "impl.free_obsolete.keeps_special_root",
        K,
        "return not root.has_sp or is_obsolete_sp(root, kvm)",
        "return is_obsolete_sp(root, kvm)",
        "is_obsolete_root() forgets that a root without sp counts as obsolete",
    ),
    _m(
        "impl.load.no_lock",
        K,
        'if v.mode != "outside" or v.unload_due or v.root is not None or not m.kvm.mmu_lock.free:',
        'if v.mode != "outside" or v.unload_due or v.root is not None:',
        "vcpu.load does not take mmu_lock",
    ),
    _m(
        "impl.load.old_generation",
        K,
        "return Root(kind=kind, has_sp=p.has_sp(kind), gen=m.kvm.mmu_valid_gen)",
        "return Root(kind=kind, has_sp=p.has_sp(kind), gen=0)",
        "a new root is stamped with generation 0, not the current one",
    ),
    _m(
        "impl.enter.ignores_request",
        K,
        'if v.mode != "outside" or v.unload_due or v.root is None or v.request:',
        'if v.mode != "outside" or v.unload_due or v.root is None:',
        "vcpu.enter ignores a pending request (kvm_vcpu_exit_request())",
    ),
    _m(
        "impl.enter.ignores_unload_due",
        K,
        'if v.mode != "outside" or v.unload_due or v.root is None or v.request:',
        'if v.mode != "outside" or v.root is None or v.request:',
        "vcpu.enter is enabled while an unload is due",
    ),
    # --- impl: the fault path ------------------------------------------------------------------
    _m(
        "impl.snapshot.keeps_seq_changed",
        K,
        "return m.with_vcpu(i, replace(v, seq_changed=False, pc=p.fault_next[v.pc]))",
        "return m.with_vcpu(i, replace(v, pc=p.fault_next[v.pc]))",
        "fault.snapshot does not take a new mmu_notifier_seq",
    ),
    _m(
        "impl.faultin.never_stale",
        K,
        "pfn_stale = m.kvm.mmu_notifier_count > 0\n",
        "pfn_stale = False\n",
        "a pfn read during an invalidation is taken as fresh",
    ),
    _m(
        "impl.part2.ignores_has_sp",
        K,
        'return p.knobs.reload_request != "none" and not v.root.has_sp and v.request',
        'return p.knobs.reload_request != "none" and v.request',
        "part 2 of the stale check fires for roots with an sp too",
    ),
    _m(
        "impl.check_request.check_keeps_bit",
        K,
        'request = v.request and p.knobs.reload_request != "check"',
        "request = v.request",
        "fault.check_request with reload_request: check does not clear the bit",
    ),
    _m(
        "impl.check_request.never_stale",
        K,
        "    if reload_request_pending(p, v):\n        request = v.request and",
        "    if False:\n        request = v.request and",
        "fault.check_request never ends the fault",
    ),
    _m(
        "impl.fault_lock.auto_inverted",
        K,
        'return "read" if kind == "tdp" else "write"',
        'return "write" if kind == "tdp" else "read"',
        "fault_lock auto: read for sp/special, write for TDP",
    ),
    _m(
        "impl.fault_lock.knob_ignored",
        K,
        'return "read" if p.knobs.fault_lock == "read" else "write"',
        'return "write"',
        "fault_lock read is taken as write",
    ),
    _m(
        "impl.fault_lock.write_ignores_readers",
        K,
        '    if fault_lock_mode(p, v.root.kind) == "write":\n        if not lock.free:',
        '    if fault_lock_mode(p, v.root.kind) == "write":\n        if lock.writer is not None:',
        "a fault's write lock does not wait for readers",
    ),
    _m(
        "impl.fault_lock.read_ignores_writer",
        K,
        "    if lock.writer is not None:\n        return None\n"
        "    m = m.with_kvm(m.kvm.with_lock(lock.read_lock(name)))",
        "    m = m.with_kvm(m.kvm.with_lock(lock.read_lock(name)))",
        "a fault's read lock does not wait for a writer",
    ),
    _m(
        "impl.part1.guard_dropped",
        K,
        'if p.knobs.obsolete_sp == "guarded" and root.has_sp and is_obsolete_sp(root, m.kvm):',
        'if p.knobs.obsolete_sp == "guarded" and is_obsolete_sp(root, m.kvm):',
        "part 1 (guarded) tests the generation of a special root's children as if it had an sp",
    ),
    _m(
        "impl.part1.guarded_off",
        K,
        'if p.knobs.obsolete_sp == "guarded" and root.has_sp and is_obsolete_sp(root, m.kvm):',
        "if False:",
        "part 1 of the stale check (guarded) never fires",
    ),
    _m(
        "impl.part1.unguarded_no_crash",
        K,
        'return "crash"  # is_obsolete_sp(vcpu->kvm, NULL)',
        'return "fresh"',
        "the unguarded check does not crash on a root without sp",
    ),
    _m(
        "impl.part2.before_lock_still_checked_at_check",
        K,
        "if not p.knobs.request_before_lock and reload_request_pending(p, v):",
        "if reload_request_pending(p, v):",
        "with request_before_lock, fault.check still tests the request",
    ),
    _m(
        "impl.part3.ignores_seq",
        K,
        "m.kvm.mmu_notifier_count > 0 or v.seq_changed or mmu_seq_round_trip_lost(p, m.kvm)",
        "m.kvm.mmu_notifier_count > 0 or mmu_seq_round_trip_lost(p, m.kvm)",
        "part 3 ignores a changed mmu_notifier_seq",
    ),
    _m(
        "impl.part3.ignores_count",
        K,
        "m.kvm.mmu_notifier_count > 0 or v.seq_changed or mmu_seq_round_trip_lost(p, m.kvm)",
        "v.seq_changed or mmu_seq_round_trip_lost(p, m.kvm)",
        "part 3 ignores an invalidation in progress",
    ),
    _m(
        "impl.part3.knob_ignored",
        K,
        "if p.knobs.mmu_notifier and (\n",
        "if (\n",
        "stale_check.mmu_notifier false still checks the notifier",
    ),
    _m(
        "impl.k6.mn_end_keeps_seq_below_2_31",
        K,
        'mmu_notifier_seq_bit31=m.kvm.mmu_notifier_seq_bit31 or p.knobs.mmu_seq == "int",',
        "mmu_notifier_seq_bit31=m.kvm.mmu_notifier_seq_bit31,",
        "K6: mn.end never takes mmu_notifier_seq past 2^31 (the int snapshot always matches)",
    ),
    _m(
        "impl.k6.int_is_unsigned",
        K,
        'return p.knobs.mmu_seq == "int" and kvm.mmu_notifier_seq_bit31',
        "return False",
        "K6: is_page_fault_stale.mmu_seq: int compares like an unsigned long",
    ),
    _m(
        "impl.check.clears_bit_on_every_check",
        K,
        'request = v.request and not (verdict == "request" and p.knobs.reload_request == "check")',
        'request = v.request and not p.knobs.reload_request == "check"',
        "reload_request check clears the bit on every fault.check (issue 10 item 9)",
    ),
    _m(
        "impl.check.test_clears_bit",
        K,
        'request = v.request and not (verdict == "request" and p.knobs.reload_request == "check")',
        'request = v.request and not (verdict == "request")',
        "reload_request test clears the bit as check does",
    ),
    _m(
        "impl.check.check_keeps_bit",
        K,
        'request = v.request and not (verdict == "request" and p.knobs.reload_request == "check")',
        "request = v.request",
        "reload_request check keeps the bit as test does",
    ),
    _m(
        "impl.map.no_spte",
        K,
        "root = replace(v.root, spte=True)",
        "root = replace(v.root, spte=False)",
        "fault.map installs no SPTE",
    ),
    _m(
        "impl.fault_unlock.keeps_lock",
        K,
        "    m = m.with_kvm(m.kvm.with_lock(m.kvm.mmu_lock.unlock(vcpu_name(i))))\n",
        "",
        "fault.unlock does not release mmu_lock",
    ),
    # --- impl: the zapper ---------------------------------------------------------------------
    _m(
        "impl.zap_lock.ignores_bound",
        K,
        "if z is None or (p.config.max_zaps is not None and z.zaps >= p.config.max_zaps):",
        "if z is None:",
        "zap.lock ignores max_zaps",
    ),
    _m(
        "impl.zap_lock.ignores_mmu_lock",
        K,
        "if not m.kvm.mmu_lock.free or (p.knobs.serialized and m.kvm.slots_lock is not None):",
        "if p.knobs.serialized and m.kvm.slots_lock is not None:",
        "zap.lock does not wait for mmu_lock",
    ),
    _m(
        "impl.zap_lock.ignores_slots_lock",
        K,
        "if not m.kvm.mmu_lock.free or (p.knobs.serialized and m.kvm.slots_lock is not None):",
        "if not m.kvm.mmu_lock.free:",
        "zap.lock does not wait for slots_lock",
    ),
    _m(
        "impl.zap_unlock.keeps_slots_lock",
        K,
        "slots = None if m.kvm.slots_lock == name else m.kvm.slots_lock",
        "slots = m.kvm.slots_lock",
        "zap.unlock does not release slots_lock",
    ),
    _m(
        "impl.zap_unlock.keeps_mmu_lock",
        K,
        "kvm = replace(m.kvm, mmu_lock=m.kvm.mmu_lock.unlock(name), slots_lock=slots)",
        "kvm = replace(m.kvm, slots_lock=slots)",
        "zap.unlock does not release mmu_lock",
    ),
    _m(
        "impl.new_gen.no_flip",
        K,
        'gen = gen + 1 if p.knobs.generation == "counter" else 1 - gen',
        'gen = gen + 1 if p.knobs.generation == "counter" else gen',
        "zap.new_gen does not flip the 1-bit generation",
    ),
    _m(
        "impl.new_gen.counter_as_bit",
        K,
        'gen = gen + 1 if p.knobs.generation == "counter" else 1 - gen',
        "gen = 1 - gen",
        "generation: counter wraps like the bit",
    ),
    _m(
        "impl.new_gen.tdp_stays_valid",
        K,
        'invalid = v.root.invalid or v.root.kind == "tdp"',
        "invalid = v.root.invalid",
        "zap.new_gen does not invalidate TDP roots",
    ),
    _m(
        "impl.new_gen.no_ghost",
        K,
        "return replace(v, root=replace(v.root, obsolete=True, invalid=invalid))",
        "return replace(v, root=replace(v.root, invalid=invalid))",
        "the ghost obsolete flag is not set at zap.new_gen",
    ),
    _m(
        "impl.request.no_kick",
        K,
        'replace(v, request=True, mode="outside" if v.mode == "guest" else v.mode)'
        " for v in m.vcpus",
        "replace(v, request=True) for v in m.vcpus",
        "zap.request does not kick vCPUs out of guest mode",
    ),
    _m(
        "impl.request.only_loaded",
        K,
        'replace(v, request=True, mode="outside" if v.mode == "guest" else v.mode)'
        " for v in m.vcpus",
        'replace(v, request=v.request or v.root is not None, mode="outside" if v.mode == "guest" '
        "else v.mode)\n        for v in m.vcpus",
        "zap.request skips vCPUs that have no root",
    ),
    _m(
        "impl.unlock_mid.keeps_lock",
        K,
        '    z = _zapper_at(p, m, i, "zap.unlock_mid")\n    if z is None:\n        return None\n'
        "    return _advance(m, i, z, m.kvm.with_lock(m.kvm.mmu_lock.unlock(ZAPPER_NAMES[i])))",
        '    z = _zapper_at(p, m, i, "zap.unlock_mid")\n    if z is None:\n        return None\n'
        "    return _advance(m, i, z)",
        "zap.unlock_mid does not release mmu_lock",
    ),
    _m(
        "impl.yield.keeps_lock",
        K,
        '    z = _zapper_at(p, m, i, "zap.yield")\n    if z is None:\n        return None\n'
        "    return _advance(m, i, z, m.kvm.with_lock(m.kvm.mmu_lock.unlock(ZAPPER_NAMES[i])))",
        '    z = _zapper_at(p, m, i, "zap.yield")\n    if z is None:\n        return None\n'
        "    return _advance(m, i, z)",
        "zap.yield does not release mmu_lock",
    ),
    _m(
        "impl.relock.no_wait",
        K,
        'z = _zapper_at(p, m, i, "zap.relock")\n    if z is None or not m.kvm.mmu_lock.free:',
        'z = _zapper_at(p, m, i, "zap.relock")\n    if z is None:',
        "zap.relock does not wait for mmu_lock",
    ),
    _m(
        "impl.zap_obsolete.no_invalidate",
        K,
        "return replace(v, root=replace(v.root, spte=False, invalid=True))",
        "return replace(v, root=replace(v.root, spte=False))",
        "zap.zap_obsolete does not mark in-use obsolete roots invalid",
    ),
    _m(
        "impl.zap_obsolete.keeps_spte",
        K,
        "return replace(v, root=replace(v.root, spte=False, invalid=True))",
        "return replace(v, root=replace(v.root, invalid=True))",
        "zap.zap_obsolete leaves the SPTEs of obsolete roots",
    ),
    _m(
        "impl.zap_obsolete.every_root",
        K,
        "if v.root is None or not is_obsolete_sp(v.root, kvm):",
        "if v.root is None:",
        "zap.zap_obsolete zaps valid roots too",
    ),
    _m(
        "impl.zap_obsolete.ignores_respect_root_count",
        K,
        "if p.knobs.respect_root_count:",
        "if True:",
        "zap.respect_root_count false does not free in-use roots",
    ),
    # --- impl: the notifier -------------------------------------------------------------------
    _m(
        "impl.mn_start.no_lock",
        K,
        "    if not m.kvm.mmu_lock.free:\n        return None\n\n    def invalidate",
        "\n    def invalidate",
        "mn.start does not take mmu_lock",
    ),
    _m(
        "impl.mn_end.no_lock",
        K,
        "if n is None or not n.started or not m.kvm.mmu_lock.free:",
        "if n is None or not n.started:",
        "mn.end does not take mmu_lock",
    ),
    _m(
        "impl.mn_start.keeps_spte",
        K,
        "root = None if v.root is None else replace(v.root, spte=False)",
        "root = v.root",
        "mn.start does not zap the gfn's SPTEs",
    ),
    _m(
        "impl.mn_start.pfn_not_stale",
        K,
        "return replace(v, root=root, pfn_stale=True)",
        "return replace(v, root=root)",
        "mn.start does not invalidate the pfns read so far",
    ),
    _m(
        "impl.mn_start.ignores_bound",
        K,
        "if n is None or n.started or (bound is not None and n.invalidations >= bound):",
        "if n is None or n.started:",
        "mn.start ignores max_invalidations",
    ),
    _m(
        "impl.mn_end.seq_unchanged",
        K,
        "vcpus=tuple(replace(v, seq_changed=True) for v in m.vcpus),",
        "vcpus=m.vcpus,",
        "mn.end does not bump mmu_notifier_seq",
    ),
    # --- impl: state, programs, invariants ----------------------------------------------------
    _m(
        "impl.is_obsolete_sp.tdp_by_generation",
        "impl/state.py",
        'return root.invalid or (root.kind != "tdp" and root.gen != kvm.mmu_valid_gen)',
        "return root.invalid or root.gen != kvm.mmu_valid_gen",
        "is_obsolete_sp() compares the generation of TDP roots too",
        equivalent="a loaded TDP root whose generation differs has seen a zap.new_gen, which "
        "marks every loaded TDP root invalid: in every reachable state the generation test "
        "adds nothing for TDP roots",
    ),
    _m(
        "impl.is_obsolete_sp.ignores_generation",
        "impl/state.py",
        'return root.invalid or (root.kind != "tdp" and root.gen != kvm.mmu_valid_gen)',
        "return root.invalid",
        "is_obsolete_sp() looks at role.invalid only",
    ),
    _m(
        "impl.rwlock.write_keeps_readers",
        "impl/state.py",
        "        if self.writer == actor:\n            return RwLock()",
        "        if self.writer == actor:\n            return RwLock(readers=self.readers)",
        "write_unlock() keeps readers that were never there (no effect) -- a control",
        equivalent="a writer holds the lock alone (every write_lock() waits for no readers), so "
        "the readers set is empty whenever the writer unlocks",
    ),
    _m(
        "impl.program.request_before_gen_ignored",
        "impl/programs.py",
        "    if request_before_gen:\n        first, second = second, first",
        "",
        "zap.request_before_gen does not swap the two steps",
    ),
    _m(
        "impl.program.no_yield",
        "impl/programs.py",
        'detour = ("zap.yield", "zap.relock") if zap_yield else ()',
        "detour = ()",
        "zap.yield adds no yield",
    ),
    _m(
        "impl.program.unlock_mid_ignored",
        "impl/programs.py",
        'middle = ("zap.unlock_mid", "zap.relock") if unlock_between_gen_and_request else ()',
        "middle = ()",
        "zap.unlock_between_gen_and_request adds no unlock",
    ),
    _m(
        "impl.window.never",
        "impl/params.py",
        "        if self.knobs.request_before_gen:\n            return False\n        return (",
        "        if True:\n            return False\n        return (",
        "no_guest_on_obsolete_root has no window between zap.new_gen and zap.request",
    ),
    _m(
        "impl.invariant.spte_by_invalid",
        "impl/model.py",
        "            if v.root.obsolete:\n",
        "            if v.root.invalid:\n",
        "no_spte_in_obsolete_root judged by role.invalid instead of the true generation",
    ),
    _m(
        "impl.invariant.uaf_off",
        "impl/model.py",
        "if any(v.root is not None and v.root.freed for v in m.vcpus):",
        "if False:",
        "no_use_after_free is never violated",
    ),
    _m(
        "impl.invariant.stale_pfn_off",
        "impl/model.py",
        "            if v.pfn_stale:\n",
        "            if False:\n",
        "no_stale_pfn is never violated",
    ),
    _m(
        "impl.has_sp.special_always_has_sp",
        "impl/params.py",
        'return kind != "special" or self.knobs.special_roots_have_sp',
        "return True",
        "special roots have an sp whatever special_roots_have_sp says",
    ),
    # --- spec: the vcpu_enter_guest() loop ----------------------------------------------------
    _m(
        "spec.check_request.keeps_bit",
        S,
        '{f"{a}.request": s.const(False), f"{a}.unload_due": due},',
        '{f"{a}.request": s.const(True), f"{a}.unload_due": due},',
        "vcpu.check_request does not clear the request bit",
    ),
    _m(
        "spec.check_request.ignores_unload_due",
        S,
        'guard = z3.And(s.at(v, PC_OUTSIDE), z3.Not(s.flag(v, "unload_due")),'
        ' s.flag(v, "request"))',
        'guard = z3.And(s.at(v, PC_OUTSIDE), s.flag(v, "request"))',
        "vcpu.check_request is enabled while an unload is due",
    ),
    _m(
        "spec.unload.no_lock",
        S,
        'guard = z3.And(s.at(v, PC_OUTSIDE), s.flag(v, "unload_due"), s.lock_free())',
        'guard = z3.And(s.at(v, PC_OUTSIDE), s.flag(v, "unload_due"))',
        "vcpu.unload does not take mmu_lock",
    ),
    _m(
        "spec.free_obsolete.keeps_special_root",
        S,
        "        or not v.has_sp\n",
        "",
        "request: free_obsolete keeps a root without sp unless it is obsolete",
    ),
    _m(
        "spec.unload.reload_keeps_valid_root",
        S,
        '        layout.knobs.request == "reload"\n        or not v.has_sp\n',
        "        not v.has_sp\n",
        "request: reload drops only obsolete roots, as free_obsolete does",
    ),
    _m(
        "spec.load.no_lock",
        S,
        'fact_guard(s.layout, "kvm_mmu_load.takes_mmu_lock", s.lock_free()),',
        "s.const(True),",
        "vcpu.load does not take mmu_lock",
    ),
    _m(
        "spec.load.keeps_old_generation",
        S,
        'f"{a}.root.gen": s["kvm.mmu_valid_gen"],',
        'f"{a}.root.gen": s[f"{a}.root.gen"],',
        "a new root keeps the generation of the previous one",
    ),
    _m(
        "spec.enter.ignores_request",
        S,
        'fact_guard(s.layout, "vcpu_enter_guest.request_check", z3.Not(s.flag(v, "request"))),',
        "s.const(True),",
        "vcpu.enter ignores a pending request",
    ),
    # --- spec: the fault path ------------------------------------------------------------------
    _m(
        "spec.snapshot.keeps_seq_changed",
        S,
        '{f"{a}.seq_changed": s.const(False), f"{a}.pc": s.pc_val(PC_FAULTIN)},',
        '{f"{a}.pc": s.pc_val(PC_FAULTIN)},',
        "fault.snapshot does not take a new mmu_notifier_seq",
    ),
    _m(
        "spec.faultin.never_stale",
        S,
        '{f"{a}.pfn_stale": s.notifier_count_positive(), f"{a}.pc": s.pc_val(after)},',
        '{f"{a}.pfn_stale": s.const(False), f"{a}.pc": s.pc_val(after)},',
        "a pfn read during an invalidation is taken as fresh",
    ),
    _m(
        "spec.part2.ignores_has_sp",
        S,
        'if s.layout.knobs.reload_request == "none" or v.has_sp:',
        'if s.layout.knobs.reload_request == "none":',
        "part 2 of the stale check fires for roots with an sp too",
    ),
    _m(
        "spec.check_request.check_keeps_bit",
        S,
        'updates[f"{a}.request"] = z3.And(s.flag(v, "request"), z3.Not(stale))',
        'updates[f"{a}.request"] = s.flag(v, "request")',
        "fault.check_request with reload_request: check does not clear the bit",
    ),
    _m(
        "spec.fault_lock.write_ignores_readers",
        S,
        'free = s.lock_free() if v.lock_mode == "write" else z3.Not(s.has_writer())',
        "free = z3.Not(s.has_writer())",
        "a fault's write lock does not wait for readers",
    ),
    _m(
        "spec.fault_lock.read_ignores_writer",
        S,
        'free = s.lock_free() if v.lock_mode == "write" else z3.Not(s.has_writer())',
        'free = s.lock_free() if v.lock_mode == "write" else s.const(True)',
        "a fault's read lock does not wait for a writer",
    ),
    _m(
        "spec.part1.off",
        S,
        'if knobs.obsolete_sp != "none" and v.has_sp:',
        "if False:",
        "part 1 of the stale check never fires",
    ),
    _m(
        "spec.part1.unguarded_no_crash",
        S,
        'crashes = knobs.obsolete_sp == "unguarded" and not v.has_sp',
        "crashes = False",
        "the unguarded check does not crash on a root without sp",
    ),
    _m(
        "spec.part3.ignores_seq",
        S,
        'z3.Or(s.notifier_count_positive(), s.flag(v, "seq_changed"), s.seq_bit31()),',
        "z3.Or(s.notifier_count_positive(), s.seq_bit31()),",
        "part 3 ignores a changed mmu_notifier_seq",
    ),
    _m(
        "spec.k6.part3_ignores_bit31",
        S,
        'z3.Or(s.notifier_count_positive(), s.flag(v, "seq_changed"), s.seq_bit31()),',
        'z3.Or(s.notifier_count_positive(), s.flag(v, "seq_changed")),',
        "K6: part 3 of the check ignores a sequence past 2^31 (int mmu_seq)",
    ),
    _m(
        "spec.k6.mn_end_keeps_seq_below_2_31",
        S,
        "updates[SEQ_BIT31] = s.const(True)",
        "updates[SEQ_BIT31] = s.const(False)",
        "K6: mn.end never takes mmu_notifier_seq past 2^31",
    ),
    _m(
        "spec.check.clears_bit_on_every_check",
        S,
        'updates[f"{a}.request"] = z3.And(s.flag(v, "request"),'
        " z3.Not(z3.And(z3.Not(part1), part2)))",
        'updates[f"{a}.request"] = s.const(False)',
        "reload_request check clears the bit on every fault.check (issue 10 item 9)",
    ),
    _m(
        "spec.check.check_ignores_short_circuit",
        S,
        'updates[f"{a}.request"] = z3.And(s.flag(v, "request"),'
        " z3.Not(z3.And(z3.Not(part1), part2)))",
        'updates[f"{a}.request"] = z3.And(s.flag(v, "request"), z3.Not(part2))',
        "reload_request check clears the bit even when part 1 already said stale",
        equivalent="part 2 needs a root without sp and part 1 a root with one: they never both "
        "hold, so the short-circuit never hides a true part 2",
    ),
    _m(
        "spec.map.no_spte",
        S,
        'f"{v.actor}.root.spte": s.const(True),',
        'f"{v.actor}.root.spte": s.const(False),',
        "fault.map installs no SPTE",
    ),
    # --- spec: the zapper ---------------------------------------------------------------------
    _m(
        "spec.zap_lock.ignores_bound",
        S,
        'conds.append(z3.ULT(s[f"{zapper}.zaps"], s.bv(bound, layout.zaps_bits)))',
        "conds.append(s.const(True))",
        "zap.lock ignores max_zaps",
    ),
    _m(
        "spec.zap_lock.ignores_slots_lock",
        S,
        'fact_guard(layout, "slots_lock.serializes_zaps", z3.Not(s.holds_slots_lock(other)))',
        "s.const(True)",
        "zap.lock does not wait for slots_lock",
    ),
    _m(
        "spec.slots_lock.never_released",
        ST,
        "return z3.Not(self.zat(zapper, 0))",
        "return bool_val(self.layout, True)",
        "slots_lock is held from the first zap.lock on, never released at zap.unlock",
    ),
    _m(
        "spec.new_gen.tdp_stays_valid",
        S,
        '                z3.Or(s.root(v, "invalid"), loaded),\n'
        '                s.root(v, "invalid"),',
        '                s.root(v, "invalid"),\n                s.root(v, "invalid"),',
        "zap.new_gen does not invalidate TDP roots",
    ),
    _m(
        "spec.new_gen.no_ghost",
        S,
        'updates[f"{v.actor}.root.obsolete"] = z3.Or(s.root(v, "obsolete"), loaded)',
        'updates[f"{v.actor}.root.obsolete"] = s.root(v, "obsolete")',
        "the ghost obsolete flag is not set at zap.new_gen",
    ),
    _m(
        "spec.request.no_kick",
        S,
        "kicked = z3.If(s.at(v, PC_GUEST), s.pc_val(PC_OUTSIDE), s.pc(v))",
        "kicked = s.pc(v)",
        "zap.request does not kick vCPUs out of guest mode",
    ),
    _m(
        "spec.relock.no_wait",
        S,
        'Transition(Step(zapper, "zap.relock"), z3.And(at, s.lock_free()), {f"{zapper}.pc": nxt})',
        'Transition(Step(zapper, "zap.relock"), at, {f"{zapper}.pc": nxt})',
        "zap.relock does not wait for mmu_lock",
    ),
    _m(
        "spec.zap_obsolete.no_invalidate",
        S,
        '            z3.Or(s.root(v, "invalid"), hit),\n            s.root(v, "invalid"),',
        '            s.root(v, "invalid"),\n            s.root(v, "invalid"),',
        "zap.zap_obsolete does not mark in-use obsolete roots invalid",
    ),
    _m(
        "spec.zap_obsolete.keeps_spte",
        S,
        'updates[f"{v.actor}.root.spte"] = z3.And(s.root(v, "spte"), z3.Not(hit))',
        'updates[f"{v.actor}.root.spte"] = s.root(v, "spte")',
        "zap.zap_obsolete leaves the SPTEs of obsolete roots",
    ),
    _m(
        "spec.zap_obsolete.ignores_respect_root_count",
        S,
        "if not layout.knobs.respect_root_count:",
        "if False:",
        "zap.respect_root_count false does not free in-use roots",
    ),
    _m(
        "spec.program.yield_keeps_lock",
        "spec/variants.py",
        'released = {i for i, steps in enumerate(positions) if "zap.relock" in steps}',
        "released: set[int] = set()",
        "zap.yield and zap.unlock_mid do not release mmu_lock",
    ),
    _m(
        "spec.program.request_before_gen_ignored",
        "spec/variants.py",
        "    if knobs.request_before_gen:\n        first, second = second, first\n    linear",
        "    linear",
        "zap.request_before_gen does not swap the two steps",
    ),
    _m(
        "spec.fault_lock.auto_inverted",
        "spec/variants.py",
        'mode = "read" if kind == "tdp" else "write"',
        'mode = "write" if kind == "tdp" else "read"',
        "fault_lock auto: read for sp/special, write for TDP",
    ),
    # --- spec: the notifier -------------------------------------------------------------------
    _m(
        "spec.mn_start.no_lock",
        S,
        'lock = fact_guard(layout, "mmu_notifier.takes_mmu_lock", s.lock_free())',
        "lock = s.const(True)",
        "mn.start does not take mmu_lock",
    ),
    _m(
        "spec.mn_end.no_lock",
        S,
        'lock = fact_guard(s.layout, "mmu_notifier.takes_mmu_lock", s.lock_free())',
        "lock = s.const(True)",
        "mn.end does not take mmu_lock",
    ),
    _m(
        "spec.mn_start.keeps_spte",
        S,
        '        updates[f"{v.actor}.root.spte"] = s.const(False)\n'
        '        updates[f"{v.actor}.pfn_stale"]',
        '        updates[f"{v.actor}.pfn_stale"]',
        "mn.start does not zap the gfn's SPTEs",
    ),
    _m(
        "spec.mn_end.seq_unchanged",
        S,
        '        updates[f"{v.actor}.seq_changed"] = s.const(True)\n',
        "",
        "mn.end does not bump mmu_notifier_seq",
    ),
    # --- spec: state and invariants -----------------------------------------------------------
    _m(
        "spec.lock_free.ignores_readers",
        ST,
        "return z3.And(z3.Not(self.has_writer()), z3.Not(self.has_readers()))",
        "return z3.Not(self.has_writer())",
        "every write lock (zap, load, unload, notifier, fault) ignores readers",
    ),
    _m(
        "spec.is_obsolete_sp.ignores_generation",
        ST,
        'return z3.Or(invalid, self.root(v, "gen") != self.vars["kvm.mmu_valid_gen"])',
        "return invalid",
        "is_obsolete_sp() looks at role.invalid only",
    ),
    _m(
        "spec.gen_next.no_flip",
        ST,
        "        return z3.Not(gen)\n",
        "        return gen\n",
        "zap.new_gen does not flip the 1-bit generation",
    ),
    _m(
        "spec.invariant.guest_window_ignored",
        INV,
        "return z3.And(guest, z3.Not(window))",
        "return guest",
        "no_guest_on_obsolete_root has no window between zap.new_gen and zap.request",
    ),
    _m(
        "spec.invariant.spte_by_invalid",
        INV,
        '[z3.And(_took(s, c, v.actor, "fault.map"), s.root(v, "obsolete"))'
        " for v in s.layout.vcpus],",
        '[z3.And(_took(s, c, v.actor, "fault.map"), s.root(v, "invalid"))'
        " for v in s.layout.vcpus],",
        "no_spte_in_obsolete_root judged by role.invalid instead of the true generation",
    ),
    _m(
        "spec.invariant.stale_pfn_by_seq",
        INV,
        '[z3.And(_took(s, c, v.actor, "fault.map"), s.flag(v, "pfn_stale"))'
        " for v in s.layout.vcpus],",
        '[z3.And(_took(s, c, v.actor, "fault.map"), s.flag(v, "seq_changed"))'
        " for v in s.layout.vcpus],",
        "no_stale_pfn judged by the sequence change instead of the pfn",
    ),
    _m(
        "spec.invariant.uaf_off",
        INV,
        'return _any(s, [z3.And(t.root(v, "loaded"), t.root(v, "freed")) for v in t.layout.vcpus])',
        "return s.const(False)",
        "no_use_after_free is never violated",
    ),
    _m(
        "spec.cover.retry_obsolete_at_check_request_only",
        INV,
        "items += [ended, early]",
        "items += [early]",
        "the cover retry.obsolete misses the retries of fault.check",
    ),
)


# --- running -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the checks said about one mutant (or the baseline, ``name`` = "(baseline)")."""

    name: str
    what: str
    equivalent: str
    caught_by: list[str] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""  # the patch did not apply

    @property
    def caught(self) -> bool:
        return bool(self.caught_by)


def apply(mutant: Mutant, root: Path) -> None:
    """Patch the copy at ``root``; ValueError unless ``old`` occurs exactly once."""
    path = root / mutant.path
    text = path.read_text(encoding="utf-8")
    count = text.count(mutant.old)
    if count != 1:
        raise ValueError(f"{mutant.path}: the text to replace occurs {count} times, not once")
    path.write_text(text.replace(mutant.old, mutant.new), encoding="utf-8")


def verify(mutants: Sequence[Mutant] = MUTANTS, root: Path = ROOT) -> list[str]:
    """Problems with the list: a name used twice, or a patch that does not apply to ``root``."""
    problems = []
    names = [m.name for m in mutants]
    problems += [f"{n}: name used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for m in mutants:
        count = (root / m.path).read_text(encoding="utf-8").count(m.old)
        if count != 1:
            problems.append(f"{m.name}: {m.path}: the text to replace occurs {count} times")
        if m.old == m.new:
            problems.append(f"{m.name}: the patch changes nothing")
    return problems


def _copy_tree(dest: Path) -> None:
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)


def _detail(check: str, status: int, out: str, err: str) -> str:
    """One line saying why a check failed."""
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    if status not in (0, 1) or not isinstance(doc, dict):
        last = (err.strip().splitlines() or out.strip().splitlines() or ["no output"])[-1]
        return f"exit {status}: {last[:200]}"
    if check == "conform":
        bad = [r for r in doc.get("results", []) if not r.get("passed")]
        first = bad[0] if bad else {}
        why = (first.get("mismatches") or [first.get("error", "")])[0]
        where = f"{first.get('case')} on {first.get('engine')}"
        return f"{len(bad)} case result(s) fail, e.g. {where}: {why}"
    if check == "prove":
        bad = [o for o in doc.get("obligations", []) if not o.get("passed")]
        first = bad[0] if bad else {}
        return f"{len(bad)} obligation(s) fail, e.g. {first.get('id')}: {first.get('mismatch')}"
    bad = [c for c in doc.get("comparisons", []) if not c.get("agrees")]
    first = bad[0] if bad else {}
    where = f"{first.get('variant')} on {','.join(first.get('config', {}).get('vcpus', []))}"
    why = (first.get("mismatches") or [""])[0]
    return f"{len(bad)} comparison(s) disagree, e.g. {where} {first.get('invariant')}: {why}"


def _run_check(check: Check, tree: Path, side: str | None) -> tuple[int, str, str]:
    """Run one check on the copy at ``tree``. A mutant changes one engine only (``side``):
    the cases then run on that engine alone, the other's results being the baseline's."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    engine = ("--engine", side) if check.name == "conform" and side is not None else ()
    argv = [sys.executable, "-m", "kvmmu.cli", *check.argv, *engine]
    try:
        done = subprocess.run(
            argv,
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -1, "", f"over the time cap of {CHECK_TIMEOUT_S:g} s"
    return done.returncode, done.stdout, done.stderr


def run_one(
    mutant: Mutant | None,
    checks: Sequence[Check],
    all_checks: bool,
    baseline: Baseline | None = None,
) -> Outcome:
    """Apply ``mutant`` (None: the baseline) to a fresh copy and run the checks on it; with
    ``baseline``, each check runs only once the unmutated tree is known to pass it."""
    start = time.monotonic()
    outcome = Outcome(
        "(baseline)" if mutant is None else mutant.name,
        "the tree as it is" if mutant is None else mutant.what,
        "" if mutant is None else mutant.equivalent,
    )
    with tempfile.TemporaryDirectory(prefix="kvmmu-mutant-") as tmp:
        tree = Path(tmp)
        _copy_tree(tree)
        if mutant is not None:
            try:
                apply(mutant, tree)
            except ValueError as bad:
                outcome.error = str(bad)
                return outcome
        for check in checks:
            if baseline is not None:
                baseline.require(check)
            side = None if mutant is None else mutant.path.split("/", 1)[0]
            status, stdout, stderr = _run_check(check, tree, side)
            outcome.ran.append(check.name)
            if status != 0:
                outcome.caught_by.append(check.name)
                outcome.details[check.name] = _detail(check.name, status, stdout, stderr)
                if not all_checks:
                    break
    outcome.seconds = time.monotonic() - start
    return outcome


class BaselineFailure(Exception):
    """The unmutated tree fails one of its own checks: no catch by that check means anything."""


class Baseline:
    """The unmutated tree's verdict on each check, computed the first time a mutant needs it
    (a check no mutant reaches, e.g. the long knob sweep when conform catches everything, is
    never run). Thread-safe: the mutants run in parallel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: dict[str, Outcome] = {}

    def require(self, check: Check) -> None:
        """Return once the unmutated tree passes ``check``; BaselineFailure if it does not."""
        with self._lock:
            if check.name not in self._done:
                self._done[check.name] = run_one(None, [check], all_checks=True)
                seconds = self._done[check.name].seconds
                print(f"baseline: {check.name} ({seconds:.0f} s)", flush=True)
            outcome = self._done[check.name]
        if outcome.caught:
            raise BaselineFailure(f"{check.name}: {outcome.details[check.name]}")

    def seconds(self) -> dict[str, float]:
        return {name: round(o.seconds, 1) for name, o in self._done.items()}


def _report(outcomes: Sequence[Outcome]) -> tuple[str, int, int]:
    """The text report and (caught, non-equivalent) counts."""
    lines = []
    real = [o for o in outcomes if not o.equivalent]
    caught = [o for o in real if o.caught and not o.error]
    for o in outcomes:
        if o.error:
            status = f"PATCH FAILED: {o.error}"
        elif o.equivalent and not o.ran:
            status = "equivalent (not run)"
        elif o.equivalent:
            status = (
                "equivalent, survives"
                if not o.caught
                else "EQUIVALENT BUT CAUGHT: " + ", ".join(o.caught_by)
            )
        elif o.caught:
            status = "caught by " + ", ".join(o.caught_by)
        else:
            status = "SURVIVES (" + ", ".join(o.ran) + " pass)"
        lines.append(f"{o.name:58} {o.seconds:6.1f} s  {status}")
        for check, text in o.details.items():
            lines.append(f"    {check}: {text}")
        if o.equivalent:
            lines.append(f"    equivalent: {o.equivalent}")
    survivors = [o.name for o in real if not o.caught or o.error]
    by_first: dict[str, int] = {}
    for o in caught:
        by_first[o.caught_by[0]] = by_first.get(o.caught_by[0], 0) + 1
    lines.append("")
    lines.append(
        f"score: {len(caught)} of {len(real)} non-equivalent mutants caught "
        f"({len(outcomes) - len(real)} equivalent); first caught by: "
        + ", ".join(f"{k} {v}" for k, v in by_first.items())
    )
    lines.append("survivors: " + (", ".join(survivors) if survivors else "none"))
    return "\n".join(lines), len(caught), len(real)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mutants",
        description="Apply each semantic mutant of spec/ and impl/ alone to a copy of the tree and "
        "run kvmmu conform, kvmmu prove proofs/ --class small and kvmmu diff (presets, then "
        "every knob value on one vCPU) on it; report which check catches each mutant.",
    )
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    parser.add_argument(
        "--all-checks",
        action="store_true",
        help="run every check on every mutant (default: stop at the first that catches it)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this mutant (repeatable; a prefix selects several)",
    )
    parser.add_argument(
        "--checks",
        default=",".join(c.name for c in CHECKS),
        metavar="C1,C2",
        help="the checks to run, in this order (default: all of "
        + ", ".join(c.name for c in CHECKS)
        + "); a mutant that survives a shorter list is not scored as a survivor of the full run",
    )
    parser.add_argument(
        "--run-equivalent",
        action="store_true",
        help="run the mutants marked equivalent too (default: listed with the reason, not run)",
    )
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--json", metavar="FILE", help="write every result as JSON")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    by_name = {c.name: c for c in CHECKS}
    unknown = [n for n in args.checks.split(",") if n not in by_name]
    if unknown:
        parser.error(f"unknown check(s) {', '.join(unknown)} (known: {', '.join(by_name)})")
    checks = [by_name[n] for n in args.checks.split(",")]
    problems = verify()
    if problems:
        print(
            "\n".join(["the mutant list does not apply to this tree:", *problems]), file=sys.stderr
        )
        return 2
    chosen = [m for m in MUTANTS if not args.only or any(m.name.startswith(p) for p in args.only)]
    if not chosen:
        parser.error("no mutant matches --only")
    if args.list:
        for m in chosen:
            mark = " (equivalent)" if m.equivalent else ""
            print(f"{m.name:58} {m.path:20} {m.what}{mark}")
        print(f"{len(chosen)} mutants")
        return 0
    start = time.monotonic()
    baseline = Baseline()
    to_run = [m for m in chosen if args.run_equivalent or not m.equivalent]
    outcomes = [Outcome(m.name, m.what, m.equivalent) for m in chosen if m not in to_run]
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_one, m, checks, args.all_checks, baseline) for m in to_run]
            for n, future in enumerate(as_completed(futures), 1):
                done = future.result()
                outcomes.append(done)
                shown = ", ".join(done.caught_by) or "nothing"
                print(f"[{n}/{len(to_run)}] {done.name}: caught by {shown}", flush=True)
    except BaselineFailure as err:
        print(f"the unmutated tree fails its own check, nothing scored: {err}", file=sys.stderr)
        return 2
    order = {m.name: i for i, m in enumerate(chosen)}
    outcomes.sort(key=lambda o: order[o.name])
    text, caught, real = _report(outcomes)
    print(text)
    print(f"{len(chosen)} mutants in {time.monotonic() - start:.0f} s with {args.jobs} job(s)")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "mutants": [asdict(o) for o in outcomes],
                    "caught": caught,
                    "non_equivalent": real,
                    "baseline_seconds": baseline.seconds(),
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0 if caught == real else 1


if __name__ == "__main__":
    raise SystemExit(main())
