"""lora-sst2 tune: the space, the study's decisions with a fake trial runner (no DVC, fast),
the prune stop on a real process group, then once end to end with real `dvc exp run`s."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from lora_core.commands.trials import RUNNING, ExpRunner, override, val_shared
from lora_core.config import Params
from lora_core.errors import ConfigError, LoraSst2Error
from lora_core.scores import VAL_PREDICTIONS
from lora_core.tune import (
    COMPLETE,
    FAILED,
    PRUNED,
    Outcome,
    Search,
    choose,
    fail_leftovers,
    shared_note,
    should_prune,
    table,
)
from lora_core.tune_space import current, parse_space
from tests.conftest import lora, run, work_copy

optuna.logging.set_verbosity(optuna.logging.WARNING)
LABELS = [i % 2 for i in range(40)]
SPACE = {"train.lr": {"log": [0.001, 0.01]}, "lora.r": {"choices": [4, 8, 16]}}


def params_with(space: dict, long_texts: dict | None = None) -> Params:
    raw = Params().to_dict()
    raw["tune"].update(space=space, long_texts=long_texts or {})
    return Params.from_dict(raw)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (
            {"train.lrr": {"log": [0.001, 0.01]}},
            "tune.space.train.lrr: is not a params key; train has batch_size, ",
        ),
        (
            {"train.lr": {"uniform": [0, 1]}},
            "tune.space.train.lr: must be {log: [low, high]}, {linear: [low, high]} or "
            "{choices: [...]}, got {'uniform': [0, 1]}",
        ),
        (
            {"lora.dropout": {"linear": [0.3, 0.1]}},
            "tune.space.lora.dropout: a linear range needs low < high, got [0.3, 0.1]",
        ),
        (
            {"train.lr": {"log": [0, 0.01]}},
            "tune.space.train.lr: a log range needs 0 < low < high, got [0, 0.01]",
        ),
        (
            {"lora.r": {"choices": [4, 0]}},
            "tune.space.lora.r: 0 is refused: lora.r = 0 is not allowed: must be an integer "
            "from 1 to 1024",
        ),
        (
            {"lora.r": {"linear": [2.5, 16]}},
            "tune.space.lora.r: the param is an integer: its range needs integers, got [2.5, 16]",
        ),
        (
            {"train.train_pooler": {"linear": [0, 1]}},
            "tune.space.train.train_pooler: the param is not a number: give it choices",
        ),
        (
            {"tune.seed": {"choices": [1]}},
            "tune.space.tune.seed: is not a params key (section.key); tune cannot vary the "
            "tune section",
        ),
    ],
)
def test_a_bad_space_entry_is_one_line_naming_the_key(space, message):
    with pytest.raises(ConfigError) as info:
        parse_space(params_with(space), long_texts=False)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_long_texts_is_checked_always_and_joins_only_when_texts_were_cut():
    params = params_with(SPACE, {"model.max_length": {"choices": [128, 256]}})
    assert [d.key for d in parse_space(params, False)] == ["train.lr", "lora.r"]
    assert [d.key for d in parse_space(params, True)] == ["train.lr", "lora.r", "model.max_length"]
    bad = params_with(SPACE, {"model.max_length": {"choices": [1]}})
    with pytest.raises(ConfigError, match=r"^tune.long_texts.model.max_length: 1 is refused: "):
        parse_space(bad, False)


def test_the_shipped_space_parses_and_holds_the_defaults():
    params = Params()
    dims = parse_space(params, True)
    assert [d.key for d in dims] == [
        "train.lr", "train.model_dropout", "lora.r", "lora.dropout", "train.train_pooler",
        "model.max_length", "model.truncation",
    ]  # fmt: skip
    assert all(d.contains(current(params, d.key)) for d in dims)


class FakeRunner:
    """Trials without DVC: ``score(overrides)`` gives (val accuracy, predicted rows) or an
    Outcome; records every call."""

    def __init__(self, score) -> None:
        self.score, self.calls = score, []

    def __call__(self, name, overrides, prune):
        self.calls.append((name, overrides))
        got = self.score(overrides)
        if isinstance(got, Outcome):
            return got
        first, predicted = got
        if prune(first):
            return Outcome(PRUNED, "below the median", first_epoch=first)
        accuracy = sum(p == y for p, y in zip(predicted, LABELS)) / len(LABELS)
        val = {"accuracy": accuracy, "loss": 0.5, "per_class": {"a": {}, "b": {}}}
        return Outcome(COMPLETE, val=val, labels=LABELS, predicted=predicted, first_epoch=first,
                       last_loss=0.4, cut_percent=1.0)  # fmt: skip


def right(n: int) -> list[int]:
    """Predictions with the first ``n`` val rows right, the rest wrong."""
    return [y if i < n else 1 - y for i, y in enumerate(LABELS)]


def make_study(storage=None, name="s", space=SPACE, prune=True) -> Search:
    params = params_with(space)
    dims = parse_space(params, True)
    defaults = {d.key: current(params, d.key) for d in dims}
    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=0),
    )  # fmt: skip
    return Search(study, dims, dims, defaults, "auto", 1000, prune, log=lambda line: None)


def test_a_progress_line_per_trial_with_the_time_left_after_each():
    lines, ticks = [], iter(range(0, 1000, 30))  # each trial takes 30 s on this clock
    state = make_study(space={"lora.r": {"choices": [4, 8]}}, prune=False)
    state.log, state.clock = lines.append, lambda: next(ticks)
    state.run(3, FakeRunner(lambda o: (0.5, right(20 + o.get("lora.r", 4)))))
    assert [line.rsplit(", ", 1)[1] for line in lines] == [
        "0.5 min; about 1 min left",  # 1 min for the 2 left, not "about 0"
        "0.5 min; about 1 min left",
        "0.5 min; the study is done",
    ]
    assert lines[0].startswith("trial 0 (1/3 complete; defaults): val.accuracy 0.6000 [")


def test_trial_0_is_params_yaml_as_it_stands_and_the_rest_are_sampled():
    state = make_study()
    runner = FakeRunner(lambda o: (0.6, right(24)))
    state.run(3, runner)
    assert [name for name, _ in runner.calls] == ["tune-s-000", "tune-s-001", "tune-s-002"]
    assert runner.calls[0][1] == {}  # no -S at all: params.yaml as it stands
    assert all(set(o) == {"train.lr", "lora.r"} for _, o in runner.calls[1:])
    trial0 = state.study.trials[0]
    assert trial0.params == {"train.lr": 0.002, "lora.r": 4} and trial0.user_attrs["defaults"]
    assert trial0.value == 0.6 and trial0.user_attrs["interval"][0] < 0.6


@pytest.mark.parametrize(("share", "note"), [(0.59, True), (0.01, False), (None, False)])
def test_a_study_whose_val_holds_train_texts_says_so_under_its_winner(share, note):
    state = make_study(space={"lora.r": {"choices": [4, 8]}}, prune=False)
    val = {"accuracy": 0.6, "loss": 0.5, "per_class": {"a": {}, "b": {}}}
    outcome = lambda o: Outcome(COMPLETE, val=val, labels=LABELS, predicted=right(24),  # noqa: E731
                                last_loss=0.4, val_shared=share if not o else 0.0)  # fmt: skip
    state.run(2, FakeRunner(outcome))
    assert state.study.user_attrs.get("val_shared") == share  # trial 0's, not trial 1's 0.0
    assert shared_note(state.study) == (
        "note: 59.0% of the val rows hold a text that train holds too "
        "(prepare's counts, trial 0): val favours a recipe that memorises them, so the "
        "winner's lead may not carry to new data; give a validation file whose texts train lacks"
        if note
        else ""
    )


def test_val_shared_reads_prepares_counts_and_skips_what_dedupe_dropped(tmp_path):
    path = tmp_path / "summary.json"
    summary = {"splits": {"val": {"rows": 40}}, "also_in_train": {"val": 20, "test": 1}}
    path.write_text(json.dumps(summary))
    # single texts: data.dedupe dropped every repeat; no pair count says what is left
    assert (val_shared(path, deduped=False), val_shared(path, deduped=True)) == (0.5, None)
    summary["pair_text_in_train"] = {"val": 12, "test": 0}
    path.write_text(json.dumps(summary))
    assert (val_shared(path, deduped=False), val_shared(path, deduped=True)) == (0.5, 0.3)


def write_curves(root: Path) -> None:
    """The DVCLive curves a finished trial leaves: one step of train loss and val accuracy."""
    curves = root / "metrics/train/plots/metrics"
    for name, column in (("train/loss", "loss"), ("val/accuracy", "accuracy")):
        (curves / name).parent.mkdir(parents=True, exist_ok=True)
        (curves / f"{name}.tsv").write_text(f"step\t{column}\n5\t0.5\n")


def test_a_finished_trial_reads_prepares_val_counts_with_its_dedupe(tmp_path):
    write_curves(tmp_path)
    (tmp_path / "metrics/predictions").mkdir(parents=True)
    rows = "index,label,predicted,probability\n0,1,1,0.9\n"
    (tmp_path / "metrics" / VAL_PREDICTIONS).write_text(rows)
    (tmp_path / "metrics/eval.json").write_text(json.dumps({"val": {"accuracy": 0.5}}))
    runner = ExpRunner(tmp_path, tmp_path / "tune")
    assert runner.read().val_shared is None  # no summary.json: nothing to say
    (tmp_path / "data/prepared").mkdir(parents=True)
    # exact repeats are counted before data.dedupe drops them, shared texts after
    summary = {
        "splits": {"val": {"rows": 200}},
        "also_in_train": {"val": 80},
        "pair_text_in_train": {"val": 50},
    }
    (tmp_path / "data/prepared/summary.json").write_text(json.dumps(summary))
    assert runner.read().val_shared == 0.4  # the baseline keeps repeats: 80 of 200
    deduped = ExpRunner(tmp_path, tmp_path / "tune", deduped=True)
    assert deduped.read().val_shared == 0.25  # repeats dropped: the 50 shared texts left


def test_the_objective_reads_val_only_never_test(tmp_path):
    """Real files as evaluate writes them; test scores made absurd (the worse val gets test
    1.0) change nothing: the winner is the better val."""
    (tmp_path / "metrics/predictions").mkdir(parents=True)
    (tmp_path / "tune").mkdir()
    write_curves(tmp_path)

    class FileRunner(ExpRunner):
        def __call__(self, name, overrides, prune):
            good = overrides.get("lora.r", 4) != 4
            n = 30 if good else 20
            rows = "".join(f"{i},{y},{p},0.5\n" for i, (y, p) in enumerate(zip(LABELS, right(n))))
            header = "index,label,predicted,probability\n"
            (tmp_path / "metrics" / VAL_PREDICTIONS).write_text(header + rows)
            test = {"accuracy": 0.0 if good else 1.0}  # absurd: inverted, and never to be read
            val = {"accuracy": n / 40, "loss": 0.5, "per_class": {"a": {}, "b": {}}}
            scores = {"val": val, "test": test}
            (tmp_path / "metrics/eval.json").write_text(json.dumps(scores))
            return self.read()

    state = make_study(space={"lora.r": {"choices": [4, 8]}}, prune=False)
    state.run(4, FileRunner(tmp_path, tmp_path / "tune"))
    values = {t.params["lora.r"]: t.value for t in state.completed()}
    assert values == {4: 0.5, 8: 0.75}
    chosen, why = choose(state.study, 0.05, force=False)
    assert chosen.params["lora.r"] == 8 and "significant (McNemar p = 0.00195 < 0.05)" in why


def test_a_failed_or_diverged_trial_counts_as_failed_and_the_study_goes_on():
    outcomes = iter([
        (0.6, right(24)),
        Outcome(FAILED, "ERROR: failed to reproduce 'train'"),
        Outcome(COMPLETE, val={"accuracy": 0.5, "loss": 0.7}, labels=LABELS,
                predicted=right(20), last_loss=float("nan")),
        (0.6, right(26)),
    ])  # fmt: skip
    state = make_study()
    runner = FakeRunner(lambda o: next(outcomes))
    state.run(2, runner)
    assert len(runner.calls) == 4
    states = [t.state.name for t in state.study.trials]
    assert states == ["COMPLETE", "FAIL", "FAIL", "COMPLETE"]
    assert state.study.trials[2].user_attrs["why"] == "diverged: training loss nan"
    rows = table(state.study, state.defaults).splitlines()
    assert rows[3].endswith("| fail (ERROR: failed to reproduce 'train') |")


def test_pruning_stops_below_the_median_of_completed_first_epochs():
    assert not should_prune(0.1, [0.6])  # one first epoch decides nothing
    assert should_prune(0.69, [0.6, 0.8]) and not should_prune(0.7, [0.6, 0.8])
    firsts = iter([0.6, 0.8, 0.5, 0.9])
    state = make_study()
    state.run(3, FakeRunner(lambda o: (next(firsts), right(24))))
    states = [t.state.name for t in state.study.trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE"]
    off = make_study(prune=False)
    firsts = iter([0.6, 0.8, 0.5])
    off.run(3, FakeRunner(lambda o: (next(firsts), right(24))))
    assert [t.state.name for t in off.study.trials] == ["COMPLETE"] * 3


def test_apply_keeps_the_defaults_unless_the_lead_is_significant_or_forced():
    predictions = iter([right(24), right(27)])  # 3 rows fixed, none broken: p = 0.25
    state = make_study(space={"lora.r": {"choices": [4, 8]}}, prune=False)
    state.run(2, FakeRunner(lambda o: (0.6, next(predictions))))
    chosen, why = choose(state.study, 0.05, force=False)
    assert chosen.number == 0
    assert why == (
        "trial 1 leads trial 0 (the defaults) by +0.0750, not significant (McNemar p = 0.25 "
        ">= 0.05); the defaults stay (--force applies the winner)"
    )
    assert choose(state.study, 0.05, force=True)[0].number == 1


def test_a_killed_study_resumes_without_repeating_complete_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = make_study(storage)
    first.run(2, FakeRunner(lambda o: (0.6, right(24))))
    first.study.ask()  # what SIGKILL mid-trial leaves: a trial RUNNING forever
    again = make_study(storage)
    assert fail_leftovers(again.study) == 1
    runner = FakeRunner(lambda o: (0.6, right(25)))
    again.run(4, runner)
    assert [name for name, _ in runner.calls] == ["tune-s-003", "tune-s-004"]
    states = [t.state.name for t in again.study.trials]
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]


def test_override_is_what_dvc_reads():
    assert [override("k.v", v) for v in (None, True, 0.0011, 8, "head+tail")] == [
        "k.v=null", "k.v=true", "k.v=0.0011", "k.v=8", 'k.v="head+tail"',
    ]  # fmt: skip


class ScriptRunner(ExpRunner):
    """The real runner over a stand-in for `dvc exp run`: a Python script that writes the
    first epoch's val accuracy where DVCLive would, then runs on (a grandchild as the stage)."""

    def __init__(self, root: Path, script: str, prelude: str = "") -> None:
        super().__init__(root, root / "tune")
        self.script, self.prelude = script, prelude
        self.baseline.mkdir()
        (self.baseline / "params.yaml").write_text("{}\n")

    def command(self, name, overrides):
        live = self.metrics / "live/plots/metrics/val"
        first = self.prelude + (
            "import pathlib, subprocess, sys, time; "
            f"p = pathlib.Path({str(live)!r}); p.mkdir(parents=True, exist_ok=True); "
            "(p / 'accuracy.tsv').write_text('step\\taccuracy\\n3\\t0.25\\n'); "
        )
        return [sys.executable, "-c", first + self.script]

    def read(self):
        return Outcome(COMPLETE, why="read")


@pytest.fixture
def sigint_ignored():
    """SIGINT ignored, as a tune started with `nohup ... &` or by a CI step has it."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_pruned_trial_is_stopped_with_its_whole_process_group(tmp_path, sigint_ignored):
    grandchild = "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    runner = ScriptRunner(tmp_path, grandchild + "time.sleep(60)")
    start, seen = time.monotonic(), []
    outcome = runner("t", {}, lambda v: seen.append(v) or True)
    assert (outcome.state, outcome.first_epoch, seen) == (PRUNED, 0.25, [0.25])
    assert time.monotonic() - start < 20  # SIGINT stopped it, not SIGKILL after 60 s
    log = (tmp_path / "tune/t.log").read_text()
    time.sleep(0.5)  # the grandchild's traceback: SIGINT reached the whole group
    assert (tmp_path / "tune/t.log").read_text().count("KeyboardInterrupt") == 2, log


def test_a_trial_that_ends_well_in_spite_of_the_stop_counts_as_complete(tmp_path):
    ignores = "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    outcome = ScriptRunner(tmp_path, "time.sleep(1.5)", ignores)("t", {}, lambda v: True)
    assert (outcome.state, outcome.why) == (COMPLETE, "read")


def test_tune_end_to_end_with_dvc_experiments(committed, tmp_path, monkeypatch, capsys):
    """Real `dvc exp run` trials on the tiny project: the space varies a param only evaluate
    reads, so no trial trains (seconds each)."""
    project = work_copy(committed, tmp_path, monkeypatch)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["tune"].update(space={"evaluate.bootstrap_resamples": {"choices": [2000, 1000]}},
                          long_texts={})  # fmt: skip
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "commit", "-qam", "a tune space"], project)
    baseline = (project / "params.yaml").read_bytes()
    code, out, err = lora(monkeypatch, capsys, project, "tune", "--trials", "1")
    assert (code, err) == (0, "")
    assert out.startswith("trial 0 (1/1 complete; defaults): val.accuracy ")
    assert (project / "params.yaml").read_bytes() == baseline  # the baseline again

    def experiments() -> list[str]:
        shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
        return sorted(e["name"] for c in shown for e in c.get("experiments") or [])

    assert experiments() == ["tune-default-000"]
    code, out, _ = lora(monkeypatch, capsys, project, "tune", "--trials", "2")  # resumes
    progress = [line for line in out.splitlines() if re.match(r"trial \d+ \(\d+/2 complete", line)]
    assert code == 0 and [line.split(" (")[0] for line in progress] == ["trial 1"]
    assert experiments() == ["tune-default-000", "tune-default-001"]
    apply = ("tune", "--trials", "2", "--apply", "--force")
    code, out, _ = lora(monkeypatch, capsys, project, *apply)
    assert code == 0 and "applied tune-default-00" in out and "complete;" not in out
    assert lora(monkeypatch, capsys, project, "check-fresh")[:2] == (
        0,
        "fresh: dvc.lock matches params and code\n",
    )


def test_a_bad_space_stops_the_cli_with_one_line_and_nothing_written(
    committed, tmp_path, monkeypatch, capsys
):
    project = work_copy(committed, tmp_path, monkeypatch)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["tune"]["space"] = {"train.lr": {"log": [0, 0.01]}}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert lora(monkeypatch, capsys, project, "tune") == (
        2,
        "",
        "lora-sst2: error: params.yaml: tune.space.train.lr: a log range needs 0 < low < high, "
        "got [0, 0.01]\n",
    )
    assert not (project / "tune").exists()


def test_the_trial_a_killed_tune_left_running_is_stopped_on_resume(tmp_path):
    """SIGKILL of tune leaves its `dvc exp run` alive in its own session: the next call stops
    it (here a stand-in whose command line says `exp run`) before DVC's lock is needed."""
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "exp", "run"]
    proc = subprocess.Popen(argv, start_new_session=True)
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    for _ in range(100):  # as a later call finds it: its command line in place
        if b"exp" in cmdline.read_bytes():
            break
        time.sleep(0.05)
    (tmp_path / RUNNING).write_text(str(proc.pid))
    runner = ExpRunner(tmp_path, tmp_path)
    assert runner.stop_orphan() is True
    assert proc.wait(5) != 0 and not (tmp_path / RUNNING).exists()
    assert runner.stop_orphan() is False  # nothing left


def test_a_failed_trial_0_stops_the_search_saying_params_yaml_needs_fixing():
    state = make_study()
    runner = FakeRunner(lambda o: Outcome(FAILED, "ERROR: failed to reproduce 'train'"))
    with pytest.raises(LoraSst2Error) as info:
        state.run(3, runner)
    assert str(info.value) == (
        "trial 0 (params.yaml as it stands) failed: ERROR: failed to reproduce 'train'; "
        "fix params.yaml first"
    )
    assert len(runner.calls) == 1
