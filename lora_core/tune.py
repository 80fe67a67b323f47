"""`lora-sst2 tune`'s study: Optuna asks, a runner runs the trial, the study records it.

The runner (commands/trials.py: one `dvc exp run` per trial; tests: a fake) returns an
Outcome; this module decides what it means. Trial 0 is params.yaml as it stands, so every
study holds the comparison. The objective is validation only: test is never read. Each
trial's val predictions stay in the study, so the winner's lead over trial 0 is tested on
the same rows (McNemar), whichever machine ran it.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from lora_core.errors import LoraSst2Error
from lora_core.splits import LEAK_SHARE
from lora_core.stats import bootstrap_intervals, flips, mcnemar_exact
from lora_core.tune_space import Dimension

PRUNE_AFTER = 2  # completed first epochs needed before a median can stop a trial
LONG_TEXT_PERCENT = 5  # tokenize's share of cut train texts past which long_texts joins
COMPLETE, PRUNED, FAILED = "complete", "pruned", "failed"


@dataclass
class Outcome:
    """What a runner saw of one trial. ``val`` is evaluate's val section (eval.json)."""

    state: str  # complete | pruned | failed
    why: str = ""  # a failure's reason, a prune's numbers
    val: dict = field(default_factory=dict)
    labels: list[int] = field(default_factory=list)  # val rows, in order
    predicted: list[int] = field(default_factory=list)
    first_epoch: float | None = None  # val accuracy after epoch 1 (DVCLive), when trained
    last_loss: float | None = None  # the last training loss logged
    cut_percent: float | None = None  # tokenize's share of train texts cut by max_length
    val_shared: float | None = None  # prepare's share of val rows holding train's text


Runner = Callable[[str, dict, Callable[[float], bool]], Outcome]


def objective_key(objective: str, classes: int) -> str:
    """The val metric to maximize: ``auto`` is accuracy with two classes, macro-F1 past two."""
    if objective == "auto":
        return "val.accuracy" if classes == 2 else "val.macro_f1"
    return objective


def diverged(outcome: Outcome) -> str:
    """Why a finished trial counts as failed, or '': it diverged, its last training loss or
    its val loss (NaN logits) is not finite. A model that predicts one class is not failed:
    it scores the majority share, ranks low, and the sampler learns from it."""
    losses = {"training loss": outcome.last_loss, "val loss": outcome.val.get("loss")}
    for name, loss in losses.items():
        if loss is not None and not (isinstance(loss, int | float) and math.isfinite(loss)):
            return f"diverged: {name} {loss}"
    return ""


def should_prune(first_epoch: float, completed: list[float]) -> bool:
    """Stop a trial whose first-epoch val accuracy is below the completed trials' median
    (once PRUNE_AFTER have one, so that a single noisy first epoch decides nothing)."""
    return len(completed) >= PRUNE_AFTER and first_epoch < statistics.median(completed)


def trials_in(study: optuna.Study, *states: TrialState) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=states or None)


def fail_leftovers(study: optuna.Study) -> int:
    """Mark RUNNING trials FAIL: with a study file of its own, they are what a killed tune
    left behind (never with a shared --storage, where another machine may be running them)."""
    left = trials_in(study, TrialState.RUNNING)
    for trial in left:
        study.tell(trial.number, state=TrialState.FAIL)
    return len(left)


def _defaults_done(study: optuna.Study) -> bool:
    return any(t.user_attrs.get("defaults") for t in trials_in(study, TrialState.COMPLETE))


def ask(study: optuna.Study, space: tuple[Dimension, ...], defaults: dict) -> tuple:
    """The next trial and its -S overrides: trial 0 (no overrides, the defaults recorded where
    the space holds them, so the sampler learns from it) until one completes, then sampled."""
    if _defaults_done(study):
        trial = study.ask()
        return trial, {d.key: d.suggest(trial) for d in space}
    inside = [d for d in space if d.contains(defaults[d.key])]
    study.enqueue_trial({d.key: defaults[d.key] for d in inside})
    trial = study.ask()
    for d in inside:
        d.suggest(trial)
    trial.set_user_attr("defaults", True)
    return trial, {}


def record(trial: optuna.Trial, outcome: Outcome, objective: str, resamples: int) -> float | None:
    """Store the outcome on the trial; the objective value when it completed, else None.
    Only the val section is read: test never chooses."""
    if outcome.state == COMPLETE:
        outcome.why = diverged(outcome)
        outcome.state = FAILED if outcome.why else COMPLETE
    trial.set_user_attr("why", outcome.why)
    if outcome.first_epoch is not None:
        trial.set_user_attr("first_epoch", outcome.first_epoch)
    if outcome.state != COMPLETE:
        return None
    key = objective_key(objective, len(outcome.val.get("per_class", ())) or 2)
    trial.study.set_user_attr("objective", key)
    metric = key.removeprefix("val.")
    value = outcome.val.get(metric)
    if not isinstance(value, int | float) or not math.isfinite(value):
        outcome.state, outcome.why = FAILED, f"no finite {key} in evaluate's output"
        trial.set_user_attr("why", outcome.why)
        return None
    labels, predicted = np.array(outcome.labels), np.array(outcome.predicted)
    classes = max(2, int(labels.max()) + 1, int(predicted.max()) + 1)
    low, high = bootstrap_intervals(predicted, labels, resamples, classes)[metric]
    trial.set_user_attr("interval", [round(low, 4), round(high, 4)])
    trial.set_user_attr("labels", outcome.labels)
    trial.set_user_attr("predicted", outcome.predicted)
    if outcome.cut_percent is not None and trial.user_attrs.get("defaults"):
        trial.study.set_user_attr("long_texts", outcome.cut_percent > LONG_TEXT_PERCENT)
    if outcome.val_shared is not None and trial.user_attrs.get("defaults"):
        trial.study.set_user_attr("val_shared", outcome.val_shared)
    return float(value)


def shared_note(study: optuna.Study) -> str:
    """A line when trial 0's val rows held train's texts past LEAK_SHARE (prepare's counts):
    the study chose by them, so its winner may owe its lead to memorising."""
    share = study.user_attrs.get("val_shared")
    if share is None or share <= LEAK_SHARE:
        return ""
    return (
        f"note: {100 * share:.1f}% of the val rows hold a text that train holds too "
        "(prepare's counts, trial 0): val favours a recipe that memorises them, so the "
        "winner's lead may not carry to new data; give a validation file whose texts train lacks"
    )


def finish(study: optuna.Study, trial: optuna.Trial, outcome: Outcome, value: float | None) -> None:
    if outcome.state == COMPLETE:
        study.tell(trial, value)
    else:
        study.tell(trial, state=TrialState.PRUNED if outcome.state == PRUNED else TrialState.FAIL)


def shown(overrides: dict, defaults: dict) -> str:
    """The overrides that differ from the defaults, short: ``lr=0.0011 r=8 pooler=true``."""
    changed = {k: v for k, v in overrides.items() if v != defaults.get(k)}
    tails = [k.rpartition(".")[2] for k in changed]
    names = [t if tails.count(t) == 1 else k for k, t in zip(changed, tails)]
    values = [f"{v:.3g}" if isinstance(v, float) else json.dumps(v) for v in changed.values()]
    return " ".join(f"{n}={v}" for n, v in zip(names, values)) or "defaults"


@dataclass
class Search:
    """One study and what its trials need: the space, the defaults, the objective."""

    study: optuna.Study
    space: tuple[Dimension, ...]  # with long_texts
    base_space: tuple[Dimension, ...]  # without
    defaults: dict[str, Any]  # every space key's value in params.yaml as it stands
    objective: str  # auto, val.accuracy or val.macro_f1
    resamples: int  # bootstrap resamples of the val interval
    prune: bool = True
    log: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic

    def dimensions(self) -> tuple[Dimension, ...]:
        return self.space if self.study.user_attrs.get("long_texts") else self.base_space

    def completed(self) -> list[optuna.trial.FrozenTrial]:
        return trials_in(self.study, TrialState.COMPLETE)

    def prune_check(self, first_epoch: float) -> bool:
        firsts = [t.user_attrs.get("first_epoch") for t in self.completed()]
        firsts = [f for f in firsts if f is not None]
        return self.prune and should_prune(first_epoch, firsts)

    def run(self, trials: int, runner: Runner) -> None:
        """Run trials until ``trials`` are complete in the study (pruned and failed ones do
        not count); a progress line each, with the time left after the first."""
        failures, minutes = 0, []
        while len(self.completed()) < trials:
            trial, overrides = ask(self.study, self.dimensions(), self.defaults)
            trial.set_user_attr("overrides", overrides)
            name = f"tune-{self.study.study_name}-{trial.number:03d}"
            trial.set_user_attr("name", name)
            start = self.clock()
            outcome = runner(name, overrides, self.prune_check)
            value = record(trial, outcome, self.objective, self.resamples)
            took = (self.clock() - start) / 60
            trial.set_user_attr("minutes", round(took, 2))
            finish(self.study, trial, outcome, value)
            minutes.append(took)
            self.log(self.progress(trial.number, overrides, outcome, value, took, minutes, trials))
            failures += outcome.state == FAILED
            if trial.user_attrs.get("defaults") and outcome.state == FAILED and outcome.why:
                why = f"trial {trial.number} (params.yaml as it stands) failed: {outcome.why}"
                raise LoraSst2Error(f"{why}; fix params.yaml first")
            if failures > trials:
                raise LoraSst2Error(f"{failures} trials failed in this run: see `dvc exp show`")

    def progress(self, number, overrides, outcome, value, took, minutes, trials) -> str:
        done = len(self.completed())
        head = f"trial {number} ({done}/{trials} complete; {shown(overrides, self.defaults)})"
        if value is None:
            return f"{head}: {outcome.state}, {outcome.why}, {took:.1f} min"
        low, high = self.study.trials[number].user_attrs["interval"]
        val = f"{self.study.user_attrs['objective']} {value:.4f} [{low:.4f}, {high:.4f}]"
        if done >= trials:
            return f"{head}: {val}, {took:.1f} min; the study is done"
        left = statistics.mean(minutes) * (trials - done)  # pruned and failed ones included
        return f"{head}: {val}, {took:.1f} min; about {max(left, 1):.0f} min left"


def defaults_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    done = [t for t in trials_in(study, TrialState.COMPLETE) if t.user_attrs.get("defaults")]
    return done[0] if done else None


def winner(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best complete trial; a tie goes to the earlier (trial 0 first)."""
    done = trials_in(study, TrialState.COMPLETE)
    return max(done, key=lambda t: (t.value, -t.number)) if done else None


def lead_p(base: optuna.trial.FrozenTrial, best: optuna.trial.FrozenTrial) -> float | None:
    """McNemar's exact p of the winner against trial 0 on the same val rows; None when the
    two scored different rows (a trial that changed the data)."""
    labels = np.array(base.user_attrs["labels"])
    if labels.tolist() != best.user_attrs["labels"]:
        return None
    base_pred, best_pred = (np.array(t.user_attrs["predicted"]) for t in (base, best))
    return mcnemar_exact(*flips(base_pred, best_pred, labels))


def choose(study: optuna.Study, alpha: float, force: bool) -> tuple[optuna.trial.FrozenTrial, str]:
    """The trial `--apply` makes the workspace, and one line saying why: the winner when its
    lead over trial 0 is significant (or --force), else trial 0."""
    base, best = defaults_trial(study), winner(study)
    if base is None or best is None:
        raise LoraSst2Error("the study has no complete trial 0 yet: run `lora-sst2 tune` first")
    if best.number == base.number:
        return base, f"trial {base.number} (the defaults) is best"
    p = lead_p(base, best)
    lead = best.value - base.value
    gap = f"trial {best.number} leads trial {base.number} (the defaults) by {lead:+.4f}"
    if p is None:
        why = f"{gap}, on other val rows: no paired test"
    elif p < alpha:
        return best, f"{gap}, significant (McNemar p = {p:.3g} < {alpha})"
    else:
        why = f"{gap}, not significant (McNemar p = {p:.3g} >= {alpha})"
    if force:
        return best, f"{why}; applied anyway (--force)"
    return base, f"{why}; the defaults stay (--force applies the winner)"


def table(study: optuna.Study, defaults: dict) -> str:
    """Every trial: number, what differs from the defaults, val [95%], minutes, state."""
    key = study.user_attrs.get("objective", "val")
    lines = [f"| trial | params | {key} [95%] | minutes | state |", "|---|---|---|---|---|"]
    for t in study.get_trials(deepcopy=False):
        if "overrides" not in t.user_attrs:
            continue
        val = "–"
        if t.state == TrialState.COMPLETE:
            low, high = t.user_attrs["interval"]
            val = f"{t.value:.4f} [{low:.4f}, {high:.4f}]"
        why = t.user_attrs.get("why")
        state = t.state.name.lower() + (f" ({why})" if why else "")
        params = shown(t.user_attrs["overrides"], defaults)
        lines.append(
            f"| {t.number} | {params} | {val} | {t.user_attrs.get('minutes', '–')} | {state} |"
        )
    return "\n".join(lines)
