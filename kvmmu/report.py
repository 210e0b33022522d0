"""The HTML report of ``kvmmu explore --html``: the verdict matrix, and each counterexample drawn
as per-actor lanes in an inline SVG.

The page is self-contained: inline CSS and a few lines of inline JavaScript, no external asset,
so it can be mailed or archived as one file. Each violated cell links to its counterexample, a
``<details>`` element that the link opens (without JavaScript, the link still jumps to it).

A lane diagram has one column per actor (vCPUs, zappers, notifier) and one row per step, the
initial state first. A step is drawn in its actor's lane with the kernel function it models
(``docs/protocol.md`` section 2); left of the lanes the step number, the step in words, and the
state after the step: who holds ``mmu_lock``, ``mmu_valid_gen``, and each vCPU's mode, request
bit and root. On the page these columns stay in view while the lanes scroll (3 or more vCPUs are
wider than a screen). The step that violates the invariant is marked. Pure functions from data
to text, no protocol logic: the states are the spec's own (replayed by
:func:`kvmmu.render.replay_states`); only the lock *holder*, which the section 6.7 state paths
do not name, is read off the steps that take and release the lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from kvmmu.engine import Replay, StateValue
from kvmmu.explore import Exploration, cell_text, config_text, how_text, row_label, summary_text
from kvmmu.obligations import command_line
from kvmmu.vocab import Config, Step, Variant

StateView = Mapping[str, StateValue]

# --- what each step models in the kernel (docs/protocol.md section 2) ----------------------------

KERNEL: Mapping[str, str] = {
    "vcpu.check_request": "kvm_check_request(MMU_RELOAD)",
    "vcpu.unload": "kvm_mmu_unload()",
    "vcpu.load": "kvm_mmu_load()",
    "vcpu.enter": "vcpu_enter_guest(): VM-entry",
    "vcpu.fault": "VM-exit: page fault",
    "fault.snapshot": "mmu_seq = kvm->mmu_notifier_seq",
    "fault.faultin": "kvm_faultin_pfn()",
    "fault.check_request": "kvm_test_request()",
    "fault.lock": "write_lock(&kvm->mmu_lock)",
    "fault.check": "is_page_fault_stale()",
    "fault.map": "__direct_map()",
    "fault.unlock": "write_unlock(&kvm->mmu_lock)",
    "zap.lock": "write_lock(&kvm->mmu_lock)",
    "zap.new_gen": "mmu_valid_gen ^= 1",
    "zap.request": "kvm_make_all_cpus_request()",
    "zap.unlock_mid": "write_unlock(&kvm->mmu_lock)",
    "zap.yield": "cond_resched_rwlock_write()",
    "zap.relock": "write_lock(&kvm->mmu_lock)",
    "zap.zap_obsolete": "kvm_zap_obsolete_pages()",
    "zap.unlock": "write_unlock(&kvm->mmu_lock)",
    "mn.start": "invalidate_range_start()",
    "mn.end": "invalidate_range_end()",
}


def kernel_function(step: Step, variant: Variant, config: Config, after: StateView) -> str:
    """The kernel function (or statement) that ``step`` models, for the variant at hand."""
    name = step.name
    tdp = False
    if step.actor.startswith("vcpu"):
        index = int(step.actor[4:])
        tdp = index < len(config.vcpus) and config.vcpus[index] == "tdp"
    if name == "vcpu.unload" and variant.knobs.get("request") == "free_obsolete":
        return "kvm_mmu_free_obsolete_roots()"
    if name == "vcpu.check_request" and variant.knobs.get("request") == "free_obsolete":
        return "kvm_check_request(FREE_OBSOLETE)"
    if name == "fault.check_request" and variant.knobs.get("stale_check.reload_request") == "check":
        return "kvm_check_request()"
    if name in ("fault.lock", "fault.unlock"):
        mode = after.get("kvm.mmu_lock") if name == "fault.lock" else None
        if mode == "read" or (mode is None and tdp and variant.knobs.get("fault_lock") == "auto"):
            return "read_lock(&kvm->mmu_lock)" if name == "fault.lock" else "read_unlock()"
    if name == "fault.map" and tdp:
        return "kvm_tdp_mmu_map()"
    return KERNEL.get(name, name)


# --- the mmu_lock holder -------------------------------------------------------------------------

_TAKES = frozenset({"fault.lock", "zap.lock", "zap.relock"})
_RELEASES = frozenset({"fault.unlock", "zap.unlock_mid", "zap.yield", "zap.unlock"})


def lock_holders(steps: Sequence[Step], states: Sequence[StateView]) -> list[str]:
    """Who holds ``mmu_lock`` after each step (``[0]`` is the initial state): ``free``,
    ``zapper (write)``, ``vcpu0, vcpu1 (read)``. An engine's own ``kvm.mmu_lock.holders``
    answer wins; else the holder is the actor whose last lock step took it (steps like
    ``vcpu.load`` or ``mn.start`` take and drop the lock within the step)."""
    held: list[str] = []
    out: list[str] = []
    for i in range(len(steps) + 1):
        if i > 0:
            step = steps[i - 1]
            if step.name in _TAKES and step.actor not in held:
                held.append(step.actor)
            elif step.name in _RELEASES and step.actor in held:
                held.remove(step.actor)
        state = states[i] if i < len(states) else {}
        mode = state.get("kvm.mmu_lock")
        answered = state.get("kvm.mmu_lock.holders")
        who = str(answered) if isinstance(answered, str) else ", ".join(sorted(held))
        if mode in (None, "free"):
            out.append("free")
        elif who:
            out.append(f"{who} ({mode})")
        else:
            out.append(str(mode))
    return out


# --- the lanes as SVG ----------------------------------------------------------------------------

ROW = 40
HEAD = 46
PAD = 8
W_INDEX = 34
W_STEP = 190  # the step in words, in the part that stays in view
W_ACTOR = 220
W_LOCK = 132
W_GEN = 44
W_VCPU = 236
W_NOTE = 290
ACTOR_FILL = {"vcpu": "#dbeafe", "zapper": "#ffedd5", "notifier": "#dcfce7"}
ACTOR_STROKE = {"vcpu": "#2563eb", "zapper": "#ea580c", "notifier": "#16a34a"}


def _kind(actor: str) -> str:
    return (
        "vcpu"
        if actor.startswith("vcpu")
        else "zapper"
        if actor.startswith("zap")
        else ("notifier")
    )


def _text(x: float, y: float, content: str, cls: str = "", anchor: str = "start") -> str:
    attrs = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}"{attrs}>{escape(content)}</text>'


def _root_text(state: StateView, vcpu: str) -> tuple[str, bool]:
    """``root g1 obsolete invalid spte`` (and whether it is obsolete or freed), or ``no root``."""
    if not state.get(f"{vcpu}.root.loaded"):
        return "no root", False
    parts = [f"root g{state.get(f'{vcpu}.root.gen')}"]
    bad = False
    for name in ("obsolete", "invalid", "freed", "spte"):
        if state.get(f"{vcpu}.root.{name}"):
            parts.append(name.upper() if name == "freed" else name)
            bad = bad or name in ("obsolete", "freed")
    return " ".join(parts), bad


def _draw(
    variant: Variant,
    config: Config,
    steps: Sequence[Step],
    states: Sequence[StateView],
    replay: Replay | None,
    title: str,
    loop: int | None = None,
) -> _Drawing:
    """The drawing of :func:`lanes_svg` and :func:`lanes_html`. With ``loop`` (a lasso,
    ``docs/protocol.md`` 6.11) the row of the state where the loop starts is marked, the loop's
    rows carry a band, and the last row says that the run repeats from that state."""
    if loop is not None and not 0 <= loop < len(steps):
        raise ValueError(f"loop start {loop} is not a state before the last step")
    actors = config.actors()
    vcpus = [a for a in actors if a.startswith("vcpu")]
    holders = lock_holders(steps, states)
    violations: dict[int, list[str]] = {}
    covers: dict[int, list[str]] = {}
    changes: dict[int, str] = {}
    if replay is not None:
        for record in replay.steps:
            violations[record.index] = sorted(record.violations)
            covers[record.index] = sorted(record.covers)
            changes[record.index] = record.changes
        first = {i: inv for inv, i in replay.first_violation.items()}
    else:
        first = {}

    # column x positions: the step number and the state first (the part that stays in view
    # when the lanes scroll, see lanes_html), then one lane per actor, then the notes
    x = PAD
    col_index = x
    x += W_INDEX
    col_step = x
    x += W_STEP
    col_lock = x
    x += W_LOCK
    col_gen = x
    x += W_GEN
    col_vcpu = {}
    for v in vcpus:
        col_vcpu[v] = x
        x += W_VCPU
    split = x
    col_actor = {}
    for a in actors:
        col_actor[a] = x
        x += W_ACTOR
    col_note = x
    width = x + W_NOTE + PAD
    height = HEAD + ROW * (len(steps) + 1) + PAD

    parts: list[str] = [
        "<style>text{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;"
        "font-size:11px;fill:#111827}.h{font-weight:bold;font-size:12px}.k{font-size:10px;"
        "fill:#4b5563}.s{font-weight:bold}.bad{fill:#b91c1c;font-weight:bold}.dim{fill:#6b7280}"
        ".req{fill:#7c3aed;font-weight:bold}.loop{fill:#1d4ed8;font-weight:bold}</style>",
    ]
    if title:
        parts.append(f"<title>{escape(title)}</title>")
    # row backgrounds
    for i in range(len(steps) + 1):
        y = HEAD + ROW * i
        fill = "#fee2e2" if i in first else ("#f9fafb" if i % 2 else "#ffffff")
        parts.append(
            f'<rect class="row{" violation" if i in first else ""}" x="{PAD}" y="{y}" '
            f'width="{width - 2 * PAD}" height="{ROW}" fill="{fill}"/>'
        )
    if loop is not None:
        # the loop's rows (its start state, then each of its steps) with a band on the left
        y0, y1 = HEAD + ROW * loop, HEAD + ROW * (len(steps) + 1)
        parts.append(
            f'<rect class="loop" x="{PAD}" y="{y0}" width="4" height="{y1 - y0}" fill="#2563eb"/>'
        )
        parts.append(
            f'<line class="loop-start" x1="{PAD}" y1="{y0}" x2="{width - PAD}" y2="{y0}" '
            'stroke="#2563eb" stroke-width="2"/>'
        )
    # lanes
    for a in actors:
        cx = col_actor[a] + W_ACTOR / 2
        parts.append(
            f'<line x1="{cx:.0f}" y1="{HEAD}" x2="{cx:.0f}" y2="{height - PAD}" '
            f'stroke="{ACTOR_STROKE[_kind(a)]}" stroke-opacity="0.35" stroke-width="2"/>'
        )
    # header
    hy = 20
    parts.append(_text(col_index + 4, hy, "#", "h"))
    for a in actors:
        label = a
        if a in vcpus:
            label += f" ({config.vcpus[int(a[4:])]})"
        parts.append(_text(col_actor[a] + W_ACTOR / 2, hy, label, "h", "middle"))
        parts.append(
            _text(col_actor[a] + W_ACTOR / 2, hy + 16, f"lane of {_kind(a)}", "k", "middle")
        )
    parts.append(_text(col_step + 4, hy, "step", "h"))
    parts.append(_text(col_step + 4, hy + 16, "actor and step", "k"))
    parts.append(_text(col_lock + 4, hy, "mmu_lock", "h"))
    parts.append(_text(col_lock + 4, hy + 16, "holder", "k"))
    parts.append(_text(col_gen + 4, hy, "gen", "h"))
    parts.append(_text(col_gen + 4, hy + 16, "valid", "k"))
    for v in vcpus:
        parts.append(_text(col_vcpu[v] + 4, hy, f"{v} state", "h"))
        parts.append(_text(col_vcpu[v] + 4, hy + 16, "mode, request, root", "k"))
    parts.append(_text(col_note + 4, hy, "invariants, covers", "h"))
    parts.append(
        f'<line x1="{PAD}" y1="{HEAD - 1}" x2="{width - PAD}" y2="{HEAD - 1}" stroke="#9ca3af"/>'
    )
    # rows
    for i in range(len(steps) + 1):
        y = HEAD + ROW * i
        state = states[i] if i < len(states) else {}
        group = [f'<g class="step" data-index="{i}">']
        if i in changes or i == 0:
            tip = "initial state"
            if i > 0:
                fn = kernel_function(steps[i - 1], variant, config, state)
                tip = f"{steps[i - 1]} ({fn}): {changes.get(i) or 'no change'}"
            group.append(f"<title>{escape(tip)}</title>")
        group.append(_text(col_index + 4, y + 24, str(i), "dim"))
        if i > 0:
            taken = steps[i - 1]
            group.append(_text(col_step + 4, y + 17, taken.actor, "k"))
            group.append(_text(col_step + 4, y + 32, taken.name, "s"))
        if i == 0:
            group.append(_text(col_actor[actors[0]] + 8, y + 24, "(initial state)", "dim"))
        else:
            step = steps[i - 1]
            kind = _kind(step.actor)
            bx = col_actor.get(step.actor, col_actor[actors[0]]) + 6
            group.append(
                f'<rect x="{bx}" y="{y + 4}" width="{W_ACTOR - 12}" height="{ROW - 8}" rx="6" '
                f'fill="{ACTOR_FILL[kind]}" stroke="{ACTOR_STROKE[kind]}"/>'
            )
            group.append(_text(bx + 8, y + 18, step.name, "s"))
            fn = kernel_function(step, variant, config, state)
            if len(fn) > 33:
                fn = fn[:32] + "…"
            group.append(_text(bx + 8, y + 32, fn, "k"))
        group.append(_text(col_lock + 4, y + 24, holders[i] if i < len(holders) else ""))
        group.append(_text(col_gen + 4, y + 24, str(state.get("kvm.mmu_valid_gen", "-"))))
        for v in vcpus:
            mode = str(state.get(f"{v}.mode", "-"))
            group.append(_text(col_vcpu[v] + 4, y + 17, mode, "bad" if mode == "crashed" else ""))
            if state.get(f"{v}.request"):
                group.append(_text(col_vcpu[v] + 70, y + 17, "request", "req"))
            if state.get(f"{v}.unload_due"):
                group.append(_text(col_vcpu[v] + 134, y + 17, "unload", "dim"))
            root, bad = _root_text(state, v)
            group.append(_text(col_vcpu[v] + 4, y + 32, root, "bad" if bad else "dim"))
        if loop is not None and i == loop:
            group.append(_text(col_note + 4, y + 17, "LOOP STARTS: this state repeats", "loop"))
        elif loop is not None and i == len(steps):
            group.append(_text(col_note + 4, y + 17, f"= state {loop}: the loop repeats", "loop"))
        elif i in first:
            group.append(_text(col_note + 4, y + 17, f"VIOLATES {first[i]}", "bad"))
        elif violations.get(i):
            group.append(_text(col_note + 4, y + 17, "also " + ", ".join(violations[i]), "bad"))
        if covers.get(i):
            group.append(_text(col_note + 4, y + 32, "cover " + ", ".join(covers[i]), "k"))
        group.append("</g>")
        parts.append("".join(group))
    return _Drawing("\n".join(parts), width, height, split, title)


@dataclass(frozen=True)
class _Drawing:
    """The inside of a lanes SVG, its size, and where the lanes start (``split``)."""

    inner: str
    width: int
    height: int
    split: int
    title: str

    def svg(self, x0: int = 0, width: int | None = None, cls: str = "lanes") -> str:
        """An ``<svg>`` showing ``width`` pixels of the drawing from ``x0`` (all by default)."""
        w = self.width - x0 if width is None else width
        label = escape(self.title or "counterexample")
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" width="{w}" '
            f'height="{self.height}" viewBox="{x0} 0 {w} {self.height}" role="img" '
            f'aria-label="{label}">\n{self.inner}\n</svg>'
        )


def lanes_svg(
    variant: Variant,
    config: Config,
    steps: Sequence[Step],
    states: Sequence[StateView],
    replay: Replay | None = None,
    title: str = "",
    loop: int | None = None,
) -> str:
    """A counterexample as per-actor lanes in one ``<svg>`` element (inline, no external
    styles: the look is in presentation attributes and an inline ``<style>``): the step number
    and the state (``mmu_lock`` holder, generation, each vCPU), then a lane per actor. A lasso
    gives ``loop``, the index of the state where its loop starts (marked, see ``_draw``)."""
    return _draw(variant, config, steps, states, replay, title, loop).svg()


def lanes_html(
    variant: Variant,
    config: Config,
    steps: Sequence[Step],
    states: Sequence[StateView],
    replay: Replay | None = None,
    title: str = "",
    loop: int | None = None,
) -> str:
    """The lanes for the page: the step and state columns in a part that sticks to the left
    edge while the lanes scroll under it (with 3 or more vCPUs the drawing is wider than a
    screen), two views of one drawing; ``loop`` as for :func:`lanes_svg`."""
    drawing = _draw(variant, config, steps, states, replay, title, loop)
    left = drawing.svg(0, drawing.split, "lanes fixed")
    right = drawing.svg(drawing.split, None, "lanes moving")
    return (
        f'<div class="scroll"><div class="lanes-row"><div class="sticky">{left}</div>'
        f"<div>{right}</div></div></div>"
    )


# --- the page ------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#111827}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin-top:28px}
.meta{color:#374151;margin:2px 0}
table.matrix{border-collapse:collapse;margin:16px 0;font-size:14px}
.matrix th,.matrix td{border:1px solid #d1d5db;padding:6px 10px;text-align:left}
.matrix thead th{background:#f3f4f6;font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:12px}
.matrix tbody th{font-family:ui-monospace,Menlo,Consolas,monospace;font-weight:normal}
td.proved,td.holds{background:#dcfce7}td.violated{background:#fee2e2;font-weight:bold}
td.vacuous{background:#fef9c3}td.not_inductive{background:#e0e7ff}
td.unknown,td.error{background:#e5e7eb;font-style:italic}
td.violated a{color:#991b1b}
details.cx{border:1px solid #d1d5db;border-radius:6px;margin:10px 0;padding:6px 10px}
details.cx[open]{border-color:#b91c1c}
details.cx summary{cursor:pointer;font-weight:bold}
.cmd{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;background:#f3f4f6;
padding:4px 6px;display:block;overflow-x:auto;white-space:pre}
.scroll{overflow-x:auto}
.lanes-row{display:flex;width:max-content}.lanes-row svg{display:block}
.lanes-row .sticky{position:sticky;left:0;z-index:1;background:#fff;
box-shadow:3px 0 4px -2px rgba(0,0,0,.25)}
.legend{font-size:13px;color:#374151}
"""

JS = """
function kvmmuOpen(id){var d=document.getElementById(id);
if(d&&d.tagName==='DETAILS'){d.open=true;d.scrollIntoView();}}
document.querySelectorAll('a[data-cx]').forEach(function(a){
a.addEventListener('click',function(){kvmmuOpen(a.getAttribute('data-cx'));});});
window.addEventListener('hashchange',function(){kvmmuOpen(location.hash.slice(1));});
if(location.hash){kvmmuOpen(location.hash.slice(1));}
"""


def cell_id(row: int, column: int) -> str:
    """The HTML id of a cell's counterexample."""
    return f"cx-{row}-{column}"


def html_report(exploration: Exploration) -> str:
    """The whole page for an exploration (replayed, for the lanes: ``explore(replay=True)``)."""
    sweep = exploration.sweep
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>kvmmu explore</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>kvmmu explore</h1>",
    ]
    if sweep.description:
        out.append(f'<p class="meta">{escape(sweep.description)}</p>')
    out.append(f'<p class="meta">Engine: {escape(how_text(sweep))}.</p>')
    if len(sweep.configs) == 1:
        out.append(f'<p class="meta">Configuration: {escape(config_text(sweep.configs[0]))}.</p>')
    out.append(f'<p class="meta">{escape(summary_text(exploration))}.</p>')
    out.append('<table class="matrix"><thead><tr><th>variant</th>')
    out += [f"<th>{escape(inv)}</th>" for inv in sweep.invariants]
    out.append("</tr></thead><tbody>")
    details: list[str] = []
    for r, (row, results) in enumerate(zip(sweep.rows, exploration.results, strict=True)):
        out.append(f"<tr><th>{escape(row_label(exploration, row))}</th>")
        for c, result in enumerate(results):
            v = result.verdict
            text = escape(cell_text(v))
            tip = escape(v.reason or f"{v.engine}, bound {v.bound}, {v.seconds:.2f} s", True)
            if v.verdict == "violated":
                ident = cell_id(r, c)
                out.append(
                    f'<td class="violated" title="{tip}"><a href="#{ident}" '
                    f'data-cx="{ident}">{text}</a></td>'
                )
                label = f"{row_label(exploration, row)}: {v.invariant} violated in {len(v.trace)}"
                command = command_line(row.variant, row.config, v.invariant, v.engine, v.bound)
                details.append(
                    f'<details class="cx" id="{ident}"><summary>{escape(label)} steps</summary>'
                    f'<code class="cmd">{escape(command)}</code>'
                )
                if result.replay is not None and result.states:
                    details.append(
                        lanes_html(
                            row.variant,
                            row.config,
                            v.trace,
                            result.states,
                            result.replay,
                            label,
                            loop=v.loop,
                        )
                    )
                else:
                    items = "".join(f"<li><code>{escape(str(s))}</code></li>" for s in v.trace)
                    details.append(f"<ol>{items}</ol>")
                details.append("</details>")
            else:
                out.append(f'<td class="{escape(v.verdict)}" title="{tip}">{text}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    out.append(
        '<p class="legend">proved: for all depths (k-induction); holds to k: no violation up to '
        "k steps; violated in n: a shortest counterexample of n steps (click it); not inductive: "
        "a counterexample to induction, not a violation; vacuous: a required cover target was "
        "not reached within the bound; unknown: the solver gave up (never a pass).</p>"
    )
    if details:
        out.append("<h2>Counterexamples</h2>")
        out += details
    out.append(f"<script>{JS}</script></body></html>")
    return "\n".join(out) + "\n"
