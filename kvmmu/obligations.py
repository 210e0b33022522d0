"""Proof obligations (``proofs/*.yaml``, format ``kvmmu-proofs/1``): load, run, report.

An obligation names a variant, a configuration, one invariant, an engine (``bmc`` to a depth,
``kind`` for all depths by k-induction), a bound and the verdict it expects, violations included.
Or, instead of the invariant, a liveness ``property`` (``docs/protocol.md`` §6.11, engine
``liveness``: k-liveness, else the shortest lasso within the bound), with ``fairness``.
Running one asks the Z3 spec; the verdict is whatever Z3 answered, and the obligation passes only
when that verdict is the expected one (and, for a counterexample, of the expected length).

A manifest (all the obligation files run together) is rejected unless every invariant has an
obligation that expects it *violated*: an invariant that no variant breaks has never been shown
to be checkable.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kvmmu.engine import Progress
from kvmmu.prover import ENGINES, SEED, Verdict, check
from kvmmu.vocab import INVARIANTS, LIVENESS_PROPERTIES, Config, Variant, variant_spec
from kvmmu.yamlio import (
    Document,
    InputError,
    as_bool,
    as_bound,
    as_int,
    as_list,
    as_mapping,
    as_name,
    as_seconds,
    as_str,
    child_path,
    find_yaml_files,
    item_path,
    load_yaml,
    parse_config,
    parse_variant,
)

FORMAT = "kvmmu-proofs/1"
EXPECTED = ("proved", "violated", "holds", "not_inductive")
EXPECTED_LIVENESS = ("proved", "violated", "not_proved")
CLASSES = ("small", "full")

TOP_REQUIRED = ("format", "description", "obligations")
TOP_OPTIONAL = ("defaults",)
SETTINGS = ("config", "engine", "bound", "class", "timeout")
OBLIGATION_REQUIRED = ("id", "variant", "expect")
OBLIGATION_OPTIONAL = (*SETTINGS, "invariant", "property", "fairness", "length", "loop", "why")


@dataclass(frozen=True)
class Obligation:
    """One proof obligation. ``bound`` is the BMC depth (``bmc``) or the largest k (``kind``);
    ``length`` the expected counterexample length of an expected violation, if given."""

    id: str
    file: Path
    line: int
    variant: Variant
    config: Config
    invariant: str
    engine: str
    bound: int
    expect: str
    klass: str = "full"
    timeout_s: float = 300.0
    length: int | None = None
    why: str = ""
    # a liveness obligation: ``invariant`` names the property, ``engine`` is "liveness"
    liveness: bool = False
    fairness: bool = True
    loop: int | None = None  # the expected loop length of an expected lasso


@dataclass(frozen=True)
class Outcome:
    """An obligation and the spec's verdict on it."""

    obligation: Obligation
    verdict: Verdict

    @property
    def mismatch(self) -> str | None:
        """Why the verdict is not what the obligation expects, or None when it is."""
        ob, v = self.obligation, self.verdict
        if v.verdict != ob.expect:
            more = f" ({v.reason})" if v.reason else ""
            return f"expected {ob.expect}, got {v.verdict}{more}"
        if ob.length is not None and len(v.trace) != ob.length:
            return f"expected a counterexample of {ob.length} steps, got {len(v.trace)}"
        if ob.loop is not None and v.loop is not None and len(v.trace) - v.loop != ob.loop:
            return f"expected a loop of {ob.loop} steps, got {len(v.trace) - v.loop}"
        return None


# --- loading -------------------------------------------------------------------------------------


def load_file(path: Path) -> list[Obligation]:
    """The obligations of one file; raises :class:`InputError`."""
    doc = load_yaml(path)
    top = as_mapping(doc, "", doc.data, TOP_REQUIRED, TOP_OPTIONAL)
    fmt = as_str(doc, "format", top["format"])
    if fmt != FORMAT:
        raise doc.error("format", f"unsupported format {fmt!r} (this loader reads {FORMAT})")
    as_str(doc, "description", top["description"])
    defaults = as_mapping(doc, "defaults", top.get("defaults", {}), optional=SETTINGS)
    for key, value in defaults.items():
        if value is None:
            raise doc.error(
                child_path("defaults", key), "null is not a value here: leave the key out"
            )
    items = as_list(doc, "obligations", top["obligations"])
    if not items:
        raise doc.error("obligations", "no obligations")
    return [
        _obligation(doc, path, item_path("obligations", i), item, defaults)
        for i, item in enumerate(items)
    ]


def _obligation(
    doc: Document, file: Path, path: str, value: object, defaults: Mapping[str, object]
) -> Obligation:
    fields = as_mapping(doc, path, value, OBLIGATION_REQUIRED, OBLIGATION_OPTIONAL)

    def setting(name: str) -> tuple[str, object]:
        # an obligation's own setting wins; its error is reported where it is written. null is
        # never "the default": it is an error where it is written (FORMAT: leave the key out)
        where = child_path(path, name) if name in fields else child_path("defaults", name)
        value = fields[name] if name in fields else defaults.get(name)
        if value is None and (name in fields or name in defaults):
            raise doc.error(where, "null is not a value here: leave the key out for the default")
        return where, value

    if ("invariant" in fields) == ("property" in fields):
        raise doc.error(path, "give exactly one of invariant and property")
    liveness = "property" in fields
    if liveness:
        return _liveness_obligation(doc, file, path, fields, setting)
    for name in ("fairness", "loop"):
        if name in fields:
            raise doc.error(child_path(path, name), f"{name} goes with a property")
    invariant = as_str(doc, child_path(path, "invariant"), fields["invariant"])
    if invariant not in INVARIANTS:
        raise doc.error(
            child_path(path, "invariant"),
            f"unknown invariant {invariant!r} (known: {', '.join(INVARIANTS)})",
        )
    expect = _choice(doc, child_path(path, "expect"), fields["expect"], EXPECTED)
    where, engine = setting("engine")
    engine = "kind" if engine is None else _choice(doc, where, engine, ENGINES)
    if expect == "not_inductive" and engine == "bmc":
        raise doc.error(child_path(path, "expect"), f"engine {engine} never answers {expect}")
    where, bound = setting("bound")
    where_config, config = setting("config")
    where_class, klass = setting("class")
    where_timeout, timeout = setting("timeout")
    if "length" in fields and fields["length"] is None:
        raise doc.error(child_path(path, "length"), "null is not a value here: leave the key out")
    length = fields.get("length")
    return Obligation(
        id=as_name(doc, child_path(path, "id"), fields["id"]),
        file=file,
        line=doc.line(path),
        variant=parse_variant(doc, child_path(path, "variant"), fields["variant"]),
        config=Config() if config is None else parse_config(doc, where_config, config),
        invariant=invariant,
        engine=engine,
        bound=30 if bound is None else as_bound(doc, where, bound),
        expect=expect,
        klass="full" if klass is None else _choice(doc, where_class, klass, CLASSES),
        timeout_s=300.0 if timeout is None else as_seconds(doc, where_timeout, timeout),
        length=None if length is None else as_int(doc, child_path(path, "length"), length, 1),
        why=as_str(doc, child_path(path, "why"), fields.get("why", "")).strip(),
    )


def _liveness_obligation(
    doc: Document,
    file: Path,
    path: str,
    fields: Mapping[str, object],
    setting: Callable[[str], tuple[str, object]],
) -> Obligation:
    """An obligation on a liveness property: engine ``liveness``, ``bound`` the lasso depth."""
    name = as_str(doc, child_path(path, "property"), fields["property"])
    if name not in LIVENESS_PROPERTIES:
        known = ", ".join(LIVENESS_PROPERTIES)
        raise doc.error(child_path(path, "property"), f"unknown property {name!r} (known: {known})")
    if "engine" in fields:
        raise doc.error(child_path(path, "engine"), "a property is checked by engine liveness")
    expect = _choice(doc, child_path(path, "expect"), fields["expect"], EXPECTED_LIVENESS)
    where, bound = setting("bound")
    where_config, config = setting("config")
    where_class, klass = setting("class")
    where_timeout, timeout = setting("timeout")
    fairness = fields.get("fairness", True)
    length, loop = fields.get("length"), fields.get("loop")
    return Obligation(
        id=as_str(doc, child_path(path, "id"), fields["id"]),
        file=file,
        line=doc.line(path),
        variant=parse_variant(doc, child_path(path, "variant"), fields["variant"]),
        config=Config() if config is None else parse_config(doc, where_config, config),
        invariant=name,
        engine="liveness",
        bound=30 if bound is None else as_int(doc, where, bound, minimum=1),
        expect=expect,
        klass="full" if klass is None else _choice(doc, where_class, klass, CLASSES),
        timeout_s=300.0 if timeout is None else as_seconds(doc, where_timeout, timeout),
        length=None if length is None else as_int(doc, child_path(path, "length"), length, 1),
        why=as_str(doc, child_path(path, "why"), fields.get("why", "")).strip(),
        liveness=True,
        fairness=as_bool(doc, child_path(path, "fairness"), fairness),
        loop=None if loop is None else as_int(doc, child_path(path, "loop"), loop, 1),
    )


def _choice(doc: Document, path: str, value: object, allowed: Sequence[str]) -> str:
    text = as_str(doc, path, value)
    if text not in allowed:
        raise doc.error(path, f"expected one of {', '.join(allowed)}, got {text!r}")
    return text


def load_manifest(paths: Iterable[Path | str], manifest_rule: bool = True) -> list[Obligation]:
    """Every obligation under ``paths``, checked as one manifest: ids unique, and (the manifest
    rule, unless ``manifest_rule`` is False: one-off files) every invariant expected violated
    by some obligation."""
    files = find_yaml_files(paths)
    if not files:
        raise FileNotFoundError("no obligation files (*.yaml) found")
    obligations = [ob for path in files for ob in load_file(path)]
    seen: dict[str, Obligation] = {}
    for ob in obligations:
        if ob.id in seen:
            first = seen[ob.id]
            raise InputError(
                str(ob.file),
                ob.line,
                "id",
                f"duplicate id {ob.id!r} (first at {first.file}:{first.line})",
            )
        seen[ob.id] = ob
    shown_violated = {ob.invariant for ob in obligations if ob.expect == "violated"}
    missing = [inv for inv in INVARIANTS if inv not in shown_violated]
    if any(ob.liveness for ob in obligations):
        # the same rule for the liveness properties, once any is checked
        missing += [p for p in LIVENESS_PROPERTIES if p not in shown_violated]
    if missing and manifest_rule:
        raise InputError(
            str(files[0]),
            1,
            "obligations",
            "the manifest must show every invariant (and, with liveness obligations, every "
            "property) violated by some variant; none expects "
            f"{', '.join(missing)} violated",
        )
    return obligations


# --- running -------------------------------------------------------------------------------------


def run(ob: Obligation, progress: Progress | None = None) -> Outcome:
    """Run one obligation on the Z3 spec. An engine failure is an ``error`` verdict."""
    started = time.perf_counter()
    try:
        if ob.liveness:
            verdict = _liveness(ob)
        else:
            (verdict,) = check(
                ob.variant, ob.config, (ob.invariant,), ob.engine, ob.bound, ob.timeout_s, progress
            )
    except Exception as err:  # reported as a failed obligation, never a pass
        elapsed = time.perf_counter() - started
        verdict = Verdict(ob.invariant, "error", ob.engine, ob.bound, elapsed, reason=str(err))
    return Outcome(ob, verdict)


def _liveness(ob: Obligation) -> Verdict:
    from spec.liveness import prove_liveness

    r = prove_liveness(
        ob.variant,
        ob.config,
        ob.invariant,
        fairness=ob.fairness,
        depth=ob.bound,
        cover_depth=ob.bound,
        timeout_s=ob.timeout_s,
    )
    return Verdict(
        ob.invariant,
        r.verdict,
        "liveness",
        ob.bound,
        r.seconds,
        z3=r.z3_version,
        trace=r.trace,
        k=r.k or None,
        lemmas=r.lemmas,
        reason=r.reason,
        loop=r.loop_start if r.verdict == "violated" else None,
    )


# --- reporting -----------------------------------------------------------------------------------


def reproduce(ob: Obligation) -> str:
    """The command line that re-runs ``ob`` alone."""
    return command_line(
        ob.variant, ob.config, ob.invariant, ob.engine, ob.bound, ob.timeout_s, ob.fairness
    )


def command_line(
    variant: Variant,
    config: Config,
    invariant: str,
    engine: str,
    bound: int,
    timeout_s: float | None = None,
    fairness: bool = True,
) -> str:
    """``kvmmu prove ...`` for one invariant (or, engine ``liveness``, one property) of one
    problem, every setting spelt out."""
    spec = variant_spec(variant)
    base, knobs = (spec, {}) if isinstance(spec, str) else (spec["base"], spec["knobs"])
    words = ["kvmmu", "prove", "--preset", str(base)]
    assert isinstance(knobs, dict)
    for knob, value in knobs.items():
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        words += ["--knob", f"{knob}={shown}"]
    words += ["--vcpus", ",".join(config.vcpus), "--zappers", str(config.zappers)]
    if config.notifier:
        words.append("--notifier")
    words += ["--max-zaps", str(config.max_zaps).lower()]
    words += ["--max-invalidations", str(config.max_invalidations).lower()]
    if engine == "liveness":
        words += ["--property", invariant, "--lasso-depth", str(bound)]
        words += [] if fairness else ["--no-fairness"]
    else:
        words += ["--invariant", invariant, "--engine", engine]
        words += ["--depth" if engine == "bmc" else "--max-k", str(bound)]
    if timeout_s is not None:
        words += ["--timeout", f"{timeout_s:g}"]
    return " ".join(words)


def outcome_json(outcome: Outcome) -> dict[str, object]:
    """One outcome as JSON data: the obligation, the verdict and everything to reproduce it."""
    ob = outcome.obligation
    return {
        "id": ob.id,
        "file": str(ob.file),
        "class": ob.klass,
        "expect": ob.expect,
        "passed": outcome.mismatch is None,
        "mismatch": outcome.mismatch,
        **verdict_json(outcome.verdict, ob.variant, ob.config, ob.timeout_s, ob.fairness),
    }


def verdict_json(
    v: Verdict, variant: Variant, config: Config, timeout_s: float, fairness: bool = True
) -> dict[str, object]:
    """A verdict as JSON data, with the bounds, seed, solver and the command reproducing it."""
    return {
        "invariant": v.invariant,
        "variant": variant_spec(variant),
        "config": config.as_dict(),
        "engine": v.engine,
        "verdict": v.verdict,
        "depth": len(v.trace) if v.verdict == "violated" else v.bound,
        "bound": v.bound,
        "k": v.k,
        "lemmas": list(v.lemmas),
        "trace": [{"actor": s.actor, "step": s.name} for s in v.trace],
        "cover": dict(v.cover),
        "cover_required": sorted(v.required),
        "seconds": round(v.seconds, 3),
        "z3": v.z3,
        "seed": SEED,
        "timeout": timeout_s,
        **({"reason": v.reason} if v.reason else {}),
        **({"depth_reached": v.reached} if v.reached is not None else {}),
        **({"loop": v.loop} if v.loop is not None else {}),
        **({"fairness": fairness} if v.engine == "liveness" else {}),
        "command": command_line(
            variant, config, v.invariant, v.engine, v.bound, timeout_s, fairness
        ),
    }


def junit_xml(outcomes: Sequence[Outcome]) -> str:
    """The outcomes as a JUnit XML report (one testcase per obligation)."""
    failures = sum(1 for o in outcomes if o.mismatch is not None)
    suite = ET.Element(
        "testsuite",
        name="kvmmu-proofs",
        tests=str(len(outcomes)),
        failures=str(failures),
        errors="0",
        time=f"{sum(o.verdict.seconds for o in outcomes):.3f}",
    )
    for o in outcomes:
        ob = o.obligation
        case = ET.SubElement(
            suite, "testcase", classname=ob.file.stem, name=ob.id, time=f"{o.verdict.seconds:.3f}"
        )
        if o.mismatch is not None:
            failure = ET.SubElement(case, "failure", message=o.mismatch, type=o.verdict.verdict)
            failure.text = reproduce(ob)
        out = ET.SubElement(case, "system-out")
        out.text = f"{ob.invariant}: {o.verdict.verdict} (expected {ob.expect}); {reproduce(ob)}"
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
