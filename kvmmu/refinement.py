"""Step-by-step refinement: every step the implementation takes must be a transition of the spec.

The *abstraction* maps an implementation state (``impl.state.Machine``) to the shared
state vocabulary: the section 6.7 state paths and the control paths of
``kvmmu.vocab.refinement_paths`` (program positions, lock holders, fault locals, the ghost
``reloaded``, counters), read with the impl's own ``state_paths``. The spec side
(``spec.refine.SpecStep``) turns the same paths into constraints on its symbolic state, so
the two sides meet only in names and values, never in each other's code.

For one impl step ``m --step--> m'`` the check asks:

1. the spec has ``step`` and accepts ``abstract(m) --step--> abstract(m')``
   (its guard holds and its effect gives exactly the values after);
2. the invariant verdicts (section 6.4) of the impl's step equal the spec's in *every* spec
   transition that the abstraction allows, and its cover targets (6.5) those of *some* such
   transition (see ``SpecStep.step`` for the one cover no path determines);
3. (per state) the impl's enabled steps are exactly the spec's enabled steps.

A mismatch is returned as a text; nothing here fixes either side.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from impl import Model, state_paths
from impl.kernel import ZAPPER_NAMES
from impl.state import Machine
from kvmmu.engine import StateValue
from kvmmu.vocab import (
    KNOBS,
    PRESETS,
    ROOT_KINDS,
    Config,
    KnobValue,
    Step,
    Variant,
    make_variant,
    refinement_paths,
)
from spec.refine import SpecStep

AbstractState = dict[str, StateValue]
# the spec's counter generation is sized to this many steps when max_zaps is null
HORIZON = 256


def abstract(model: Model, m: Machine) -> AbstractState:
    """The abstraction of ``m``: its value on every refinement path of the configuration.

    The impl's ``state_paths`` answers all of them but ``zapperX.position``, which is the
    zapper's own program counter: ``Zapper.pc`` indexes ``Params.zap_program``, the program as
    section 6.3 lists it."""
    answers = state_paths(model, m)
    for name, z in zip(ZAPPER_NAMES, m.zappers, strict=False):
        answers[f"{name}.position"] = z.pc
    return {path: answers.get(path) for path in refinement_paths(model.params.config)}


@functools.lru_cache(maxsize=32)
def spec_step(variant: Variant, config: Config) -> SpecStep:
    """The spec's one-step checker for a variant and configuration (built once: encoding the
    relation costs far more than a query)."""
    return SpecStep(variant, config, horizon=HORIZON)


@dataclass
class Refinement:
    """The impl ``model`` and the spec of one variant and configuration, side by side."""

    variant: Variant
    config: Config
    model: Model
    spec: SpecStep = field(repr=False)

    @staticmethod
    def of(variant: Variant, config: Config, model: Model | None = None) -> Refinement:
        """``model`` defaults to the impl's ``Model.of`` (a test may pass a tampered one)."""
        impl = Model.of(variant, config) if model is None else model
        return Refinement(variant, config, impl, spec_step(variant, config))

    def check_initial(self) -> list[str]:
        """The impl's initial state must be an initial state of the spec."""
        state = abstract(self.model, self.model.initial())
        if self.spec.is_initial(state):
            return []
        return [f"initial state: no initial state of the spec reads {_show_state(state)}"]

    def check_step(
        self,
        pre: Machine,
        step: Step,
        post: Machine,
        violations: frozenset[str],
        covers: frozenset[str],
    ) -> list[str]:
        """Mismatches of one impl step (with the impl's verdicts) against the spec."""
        before, after = abstract(self.model, pre), abstract(self.model, post)
        verdict = self.spec.step(before, step, after, violations, covers)
        if not verdict.accepted:
            text = f"{step}: the spec rejects the impl's step: {verdict.reason}"
            spec_after = self.spec.successor_paths(before, step, after)
            if spec_after is not None:
                diff = [
                    f"{p} impl {_show(after[p])} spec {_show(spec_after[p])}"
                    for p in after
                    if spec_after[p] != after[p]
                    # a path the spec does not determine (unbounded counter) is read as null
                    and not (spec_after[p] is None and p.endswith(("zaps", "invalidations")))
                ]
                text += " (" + "; ".join(diff) + ")" if diff else ""
            return [text]
        out: list[str] = []
        if verdict.violations != violations:
            out.append(
                f"{step}: invariant verdicts differ: impl {_names(violations)}, "
                f"spec {_names(verdict.violations)}"
            )
        if verdict.covers != covers:
            out.append(
                f"{step}: cover targets differ: impl {_names(covers)}, "
                f"spec {_names(verdict.covers)}"
            )
        if not out and not verdict.determined:
            out.append(f"{step}: the spec's invariant verdicts are not determined by the paths")
        return out

    def check_enabled(self, m: Machine) -> list[str]:
        """The impl's enabled steps in ``m`` must be exactly the spec's: none of the others is
        enabled in the spec (one check over all of them), and all of them are (one more)."""
        impl_enabled = self.model.enabled(m)
        state = abstract(self.model, m)
        disabled = [s for s in self.spec.layout.choices if s not in set(impl_enabled)]
        out = [
            f"{s}: disabled in the impl, enabled in the spec"
            for s in self.spec.enabled_among(state, disabled)
        ]
        out += [
            f"{s}: enabled in the impl, disabled in the spec"
            for s in self.spec.all_enabled(state, impl_enabled)
        ]
        return out

    def execute(self, m: Machine, step: Step) -> tuple[Machine, list[str]]:
        """Run ``step`` on the impl (it must be enabled there) and check it."""
        outcome = self.model.execute(m, step)
        if outcome is None:
            raise ValueError(f"{step} is not enabled in the impl")
        found = self.check_step(m, step, outcome.machine, outcome.violations, outcome.covers)
        return outcome.machine, found


def check_step(
    variant: Variant, config: Config, pre_machine: Machine, step: Step, post_machine: Machine
) -> list[str]:
    """Mismatch texts of one impl step ``pre_machine --step--> post_machine`` against the spec,
    the impl's invariant verdicts and covers judged by ``Model.of(variant, config)``."""
    r = Refinement.of(variant, config)
    model = r.model
    violations = model.step_violations(pre_machine, step, post_machine)
    violations |= model.state_violations(post_machine)
    covers = model.covers(pre_machine, step, post_machine)
    return r.check_step(pre_machine, step, post_machine, violations, covers)


# --- random walks (deterministic, for the injected-divergence tests and ad-hoc runs) ------------


@dataclass(frozen=True)
class WalkResult:
    """A random walk: the schedule taken and the mismatches, each with its 1-based step index
    (0 for the initial state). The walk stops after the first step with a mismatch."""

    variant: Variant
    config: Config
    schedule: tuple[Step, ...]
    mismatches: tuple[tuple[int, str], ...]
    checked: int  # steps checked

    def report(self) -> str:
        lines = [f"variant {self.variant.name}, config {self.config.as_dict()}"]
        lines += [f"  {i}. {s}" for i, s in enumerate(self.schedule, 1)]
        lines += [f"  mismatch at step {i}: {text}" for i, text in self.mismatches]
        return "\n".join(lines)


def walk(
    variant: Variant,
    config: Config,
    seed: int,
    steps: int,
    model: Model | None = None,
    enabled_sets: bool = True,
) -> WalkResult:
    """Check a seeded random walk of at most ``steps`` impl steps, step by step (and, with
    ``enabled_sets``, the enabled steps of every state reached)."""
    r = Refinement.of(variant, config, model)
    rng = random.Random(seed)
    m = r.model.initial()
    schedule: list[Step] = []
    found = [(0, text) for text in r.check_initial()]
    if enabled_sets:
        found += [(0, text) for text in r.check_enabled(m)]
    while not found and len(schedule) < steps:
        options = r.model.enabled(m)
        if not options:
            break
        step = options[rng.randrange(len(options))]
        schedule.append(step)
        m, texts = r.execute(m, step)
        if enabled_sets and not texts:
            texts = r.check_enabled(m)
        found += [(len(schedule), text) for text in texts]
    return WalkResult(variant, config, tuple(schedule), tuple(found), len(schedule))


def random_problem(rng: random.Random) -> tuple[Variant, Config]:
    """A random variant (a preset with a few random knob overrides) and configuration (1 to 3
    vCPUs of random kinds, 0 to 2 zappers, the notifier or not, small or null bounds)."""
    preset = rng.choice(sorted(PRESETS))
    knobs = sorted(KNOBS)
    overrides: dict[str, KnobValue] = {
        k: rng.choice(KNOBS[k]) for k in rng.sample(knobs, rng.randint(0, 3))
    }
    config = Config(
        vcpus=tuple(rng.choice(ROOT_KINDS) for _ in range(rng.randint(1, 3))),
        zappers=rng.randint(0, 2),
        notifier=rng.random() < 0.5,
        max_zaps=rng.choice((None, 0, 1, 2)),
        max_invalidations=rng.choice((None, 0, 1, 2)),
    )
    return make_variant(preset, overrides), config


def walks(count: int, steps: int, seed: int = 0) -> list[WalkResult]:
    """``count`` walks on random problems (from ``seed``), stopping at the first mismatching
    walk; the impl models come from ``Model.of`` at call time (so a patched kernel is used)."""
    rng = random.Random(seed)
    results: list[WalkResult] = []
    for _ in range(count):
        variant, config = random_problem(rng)
        result = walk(variant, config, rng.randrange(1 << 30), steps)
        results.append(result)
        if result.mismatches:
            break
    return results


def _names(names: frozenset[str]) -> str:
    return "{" + ", ".join(sorted(names)) + "}"


def _show(value: StateValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _show_state(state: Mapping[str, StateValue]) -> str:
    return ", ".join(f"{p}={_show(v)}" for p, v in state.items())


__all__ = [
    "AbstractState",
    "Refinement",
    "WalkResult",
    "abstract",
    "check_step",
    "random_problem",
    "spec_step",
    "walk",
    "walks",
]
