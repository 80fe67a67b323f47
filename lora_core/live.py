"""The train stage's DVCLive log: curves and metrics that DVC reads while training runs.

DVCLive writes ``metrics/live/`` as training goes (``dvc exp show`` shows its step and latest
metrics, ``dvc plots show`` its curves): ``train/loss`` and ``train/lr`` per loss window at
the optimizer step, ``val/accuracy`` and ``val/loss`` per epoch at the epoch's last step,
the params it trained with (``params.yaml``), and at the end the final training metrics.
It is a live view, apart from the final outputs: the stage copies it into ``metrics/train/``
with the adapter, all at once, when training is done.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lora_core.config import TRAIN_READS, Params
from lora_core.errors import damaged, is_number

LIVE = "live"  # under the metrics folder: metrics/live/, git-ignored
CURVES = "train"  # under the metrics folder: metrics/train/, the finished run's copy of it
TSVS = ("train/loss", "train/lr", "val/accuracy", "val/loss")  # under plots/metrics/, .tsv


def live_folder(metrics_dir: str | Path) -> Path:
    """Where the train stage logs while it trains: ``<metrics>/live``."""
    return Path(metrics_dir) / LIVE


def histories(folder: str | Path) -> Path:
    """Where a DVCLive folder keeps its metric histories (``<name>.tsv``)."""
    return Path(folder) / "plots" / "metrics"


class TrainLog:
    """One training run's DVCLive logger; ``replay`` first when the run resumed."""

    def __init__(self, folder: str | Path, params: Params) -> None:
        from dvclive import Live

        logging.getLogger("dvclive").setLevel(logging.ERROR)  # no "Logging to experiment"
        # A new folder each run (resume=False): a resumed run replays its checkpoint's rows,
        # so a killed run's rows past its checkpoint never stay behind, twice or at all.
        self.folder = Path(folder)
        self.live = Live(dir=str(folder), save_dvc_exp=False, dvcyaml=None, resume=False)
        self.live.log_params(params.select(TRAIN_READS))

    def window(self, row: dict) -> None:
        """A loss reading: {step, epoch, loss, lr}."""
        self.live.step = row["step"]
        self.live.log_metric("train/loss", round(row["loss"], 6))
        self.live.log_metric("train/lr", round(row["lr"], 9))
        self.live.log_metric("epoch", row["epoch"], plot=False)
        self.live.make_summary()

    def epoch(self, epoch: int, step: int, accuracy: float, loss: float) -> None:
        """Validation after ``epoch``, which ended at optimizer step ``step``."""
        self.live.step = step
        self.live.log_metric("val/accuracy", round(accuracy, 6))
        self.live.log_metric("val/loss", round(loss, 6))
        self.live.log_metric("epoch", epoch, plot=False)
        self.live.make_summary()

    def replay(self, result) -> None:
        """Log again what a checkpoint's run had logged (``TrainResult``'s bookkeeping)."""
        for row in result.curve:
            self.window(row)
        epochs = zip(result.epoch_end_steps, result.val_accuracy, result.val_loss)
        for epoch, (step, accuracy, loss) in enumerate(epochs, start=1):
            self.epoch(epoch, step, accuracy, loss)

    def finish(self, summary: dict) -> None:
        """The final training metrics (numbers only) beside the last step's."""
        for key, value in summary.items():
            if is_number(value):
                self.live.summary[key] = value
        self.live.make_summary()


def read_tsv(path: Path, column: str) -> list[dict]:
    """A DVCLive history ``step<TAB>column`` as rows of floats."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        if lines[0].split("\t") != ["step", column]:
            raise ValueError("columns")
        rows = [line.split("\t") for line in lines[1:]]
        return [{"step": float(step), column: float(value)} for step, value in rows]
    except (ValueError, IndexError, UnicodeDecodeError):
        raise damaged(path, "train") from None
