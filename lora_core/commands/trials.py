"""One tune trial as a real pipeline experiment: `dvc exp run -n NAME -S key=value ...` in
the workspace, watched for pruning, and what it left read back as an Outcome.

Trials run one after another in the workspace, not with --temp: the workspace's outputs and
DVC's run cache are right there, so a trial re-runs only the stages its overrides change,
and the train stage's live DVCLive log (metrics/live/) is where pruning can read it. Before
each trial params.yaml is rewritten from the study's baseline, so every trial is the
baseline plus its overrides, whatever a killed trial left behind.
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lora_core.commands.dvcrun import run
from lora_core.errors import LoraSst2Error
from lora_core.live import CURVES, LIVE, histories, read_tsv
from lora_core.readers import read_json
from lora_core.scores import VAL_PREDICTIONS, read_predictions
from lora_core.tune import COMPLETE, FAILED, PRUNED, Outcome

RUNNING = "running.pid"  # in the study folder: the process group of the trial running now
POLL_SECONDS = 0.5  # how often a running trial's live log is read
STOP_SECONDS = 60  # SIGINT's grace before SIGKILL when a pruned trial is stopped


def override(key: str, value) -> str:
    """``-S key=value`` as DVC's parser reads it: JSON is valid there (null, true, "head")."""
    return f"{key}={json.dumps(value)}"


def _first(path: Path, column: str) -> float | None:
    """The first value of a DVCLive history, or None while it has none."""
    try:
        rows = read_tsv(path, column)
    except (LoraSst2Error, OSError):
        return None
    return rows[0][column] if rows else None


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def val_shared(summary: Path, deduped: bool) -> float | None:
    """prepare's share of the val rows it kept that repeat a train row (unless ``deduped``:
    data.dedupe dropped those) or, for pairs, hold a train text."""
    counted = read_json(summary)
    rows = counted.get("splits", {}).get("val", {}).get("rows")
    if not rows:
        return None
    kinds = ("pair_text_in_train",) if deduped else ("also_in_train", "pair_text_in_train")
    counts = [counted[kind].get("val", 0) for kind in kinds if kind in counted]
    return max(counts) / rows if counts else None  # none: single texts all dropped, or unknown


def launch(cmd: list[str], cwd: Path, out) -> subprocess.Popen:
    """Start a trial's command in a session of its own (a prune stops all of it), with
    SIGINT's default action back. A tune started in the background (`nohup lora-sst2 tune &`,
    a CI step, a batch job) inherits SIGINT ignored, and a Python program that starts with
    it ignored never raises KeyboardInterrupt: DVC and the stage would run on to the end."""
    env = {"DVC_NO_ANALYTICS": "1", **os.environ}
    return subprocess.Popen(
        cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        preexec_fn=functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def stop(proc: subprocess.Popen) -> None:
    """Stop a trial's whole process group: SIGINT (DVC cleans up), SIGKILL after a grace."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class ExpRunner:
    """Runs trials in the project at ``root``; ``baseline`` is the study's saved params.yaml
    (and dvc.lock beside it), the workspace every trial starts from and the study ends on.
    ``deduped``: the baseline's data.dedupe, so prepare's repeats of train left val (the
    share only trial 0's counts give is the baseline's)."""

    def __init__(self, root: Path, baseline: Path, deduped: bool = False) -> None:
        self.root, self.baseline, self.deduped = root, baseline, deduped
        self.metrics = root / "metrics"

    def stop_orphan(self) -> bool:
        """Stop the trial a SIGKILLed tune left running (its `dvc exp run` lives on in its
        own session and would hold DVC's lock); whether there was one."""
        path = self.baseline / RUNNING
        if not path.exists():
            return False
        pid = int(path.read_text())
        path.unlink()
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"exp\0run" not in cmdline.read_bytes():
            return False  # the id now belongs to another program
        for sig, wait in ((signal.SIGINT, STOP_SECONDS), (signal.SIGKILL, 5)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                return sig == signal.SIGKILL
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(POLL_SECONDS)
        return True

    def reset(self) -> None:
        """params.yaml as the study's baseline, and no live log left from an earlier trial."""
        text = (self.baseline / "params.yaml").read_bytes()
        (self.root / "params.yaml").write_bytes(text)
        (histories(self.metrics / LIVE) / "val/accuracy.tsv").unlink(missing_ok=True)

    def command(self, name: str, overrides: dict) -> list[str]:
        sets = [a for k, v in overrides.items() for a in ("-S", override(k, v))]
        return [sys.executable, "-m", "dvc", "exp", "run", "-n", name, *sets]

    def __call__(self, name: str, overrides: dict, prune: Callable[[float], bool]) -> Outcome:
        self.reset()
        log = self.baseline / f"{name}.log"
        with open(log, "w", encoding="utf-8") as out:
            proc = launch(self.command(name, overrides), self.root, out)
            (self.baseline / RUNNING).write_text(str(proc.pid))
            stopped_at = self._watch(proc, prune)
            (self.baseline / RUNNING).unlink()
        # A trial that ended well in spite of the stop (it was finishing) counts as complete.
        if stopped_at is not None and proc.returncode != 0:
            self.reset()
            why = f"first-epoch val accuracy {stopped_at:.4f} below the median"
            return Outcome(PRUNED, why, first_epoch=stopped_at)
        if proc.returncode != 0:
            self.reset()
            errors = [ln for ln in log.read_text(errors="replace").splitlines() if "ERROR" in ln]
            why = errors[-1].strip() if errors else f"dvc exit {proc.returncode}"
            return Outcome(FAILED, f"{why} (see {log.relative_to(self.root)})")
        return self.read()

    def _watch(self, proc: subprocess.Popen, prune: Callable[[float], bool]) -> float | None:
        """Wait for the trial; when its first epoch's val accuracy appears and ``prune``
        says so, stop it and return that accuracy; None when the trial ran to its end. Tune
        itself interrupted (Ctrl-C, SIGTERM) stops the trial too: it runs in its own session,
        where a terminal's Ctrl-C does not reach."""
        live = histories(self.metrics / LIVE) / "val/accuracy.tsv"
        asked = False
        try:
            while proc.poll() is None:
                time.sleep(POLL_SECONDS)
                first = None if asked else _first(live, "accuracy")
                if first is None:
                    continue
                asked = True
                if prune(first):
                    stop(proc)
                    return first
        except BaseException:
            stop(proc)
            raise
        return None

    def read(self) -> Outcome:
        """A finished trial's val scores, val predictions, first epoch and last loss."""
        val = read_json(self.metrics / "eval.json")["val"]
        text = (self.metrics / VAL_PREDICTIONS).read_text(encoding="utf-8")
        labels, predicted = read_predictions(text)
        curves = histories(self.metrics / CURVES)
        loss = read_tsv(curves / "train/loss.tsv", "loss")
        task = self.root / "data/tokenized/task.json"
        cut = read_json(task).get("lengths", {}).get("train", {}) if task.exists() else {}
        summary = self.root / "data/prepared/summary.json"
        shared = val_shared(summary, self.deduped) if summary.exists() else None
        return Outcome(
            COMPLETE,
            val=val,
            labels=labels.tolist(),
            predicted=predicted.tolist(),
            first_epoch=_first(curves / "val/accuracy.tsv", "accuracy"),
            last_loss=loss[-1]["loss"] if loss else math.nan,
            cut_percent=cut.get("truncated_percent"),
            val_shared=shared,
        )

    def apply(self, name: str) -> None:
        """`dvc exp apply NAME`: its params.yaml, dvc.lock, metrics and adapter."""
        proc = run([sys.executable, "-m", "dvc", "exp", "apply", "-q", name], "dvc exp apply")
        if proc.returncode != 0:
            raise LoraSst2Error(f"`dvc exp apply {name}` failed: {proc.stderr.strip()[-300:]}")

    def restore(self, name: str | None) -> None:
        """The workspace back to the baseline: trial 0's experiment when this machine has
        it, else the baseline params.yaml and dvc.lock with `dvc checkout`."""
        try:
            if name is None:
                raise LoraSst2Error("no trial 0 here")
            self.apply(name)
        except LoraSst2Error:
            self.reset()
            lock = self.baseline / "dvc.lock"
            if lock.exists():
                (self.root / "dvc.lock").write_bytes(lock.read_bytes())
            run([sys.executable, "-m", "dvc", "checkout", "-q"], "dvc checkout")
