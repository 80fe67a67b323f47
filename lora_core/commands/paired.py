"""The gate's paired test: REV's and the workspace's test predictions, example by example.

McNemar's exact test for accuracy, a paired bootstrap for F1 (macro-F1 past two classes);
verdict.py decides with the p values, gate.py reads the two predictions files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lora_core.stats import class_count, flips, mcnemar_exact, paired_bootstrap_p


@dataclass(frozen=True)
class Paired:
    """REV's and the workspace's test predictions, compared example by example."""

    examples: int
    fixed: int  # REV wrong, workspace right
    broken: int  # REV right, workspace wrong
    f1_p_value: float = 1.0  # paired bootstrap: did F1 change? (macro-F1 past two classes)
    classes: int = 2  # the task's, from evaluate's per_class (else as the ids imply)

    @property
    def f1_key(self) -> str:
        """The metric the paired bootstrap tests: test.f1, or test.macro_f1 past two classes."""
        return "test.f1" if self.classes == 2 else "test.macro_f1"

    @property
    def p_value(self) -> float:
        """McNemar's exact p: did accuracy change?"""
        return mcnemar_exact(self.fixed, self.broken)

    def p_for(self, key: str) -> float | None:
        """The paired test's p for a metric, or None where there is none (loss, val)."""
        return {"test.accuracy": self.p_value, self.f1_key: self.f1_p_value}.get(key)


def pair(
    base: tuple[np.ndarray, np.ndarray],
    head: tuple[np.ndarray, np.ndarray],
    resamples: int,
    classes: int | None = None,
) -> Paired:
    """Pair two (labels, predicted) of the same test set; different sets are a ValueError.

    ``classes`` is the task's class count (evaluate's ``per_class``); None takes what the
    ids imply, the largest + 1, which undercounts a task whose highest classes no test row
    has or predicts.
    """
    (base_labels, base_pred), (labels, head_pred) = base, head
    if len(base_labels) != len(labels) or (base_labels != labels).any():
        raise ValueError("the two commits scored different test sets")
    implied = class_count(labels, base_pred, head_pred)
    if classes is not None and implied > classes:
        raise ValueError(f"class id {implied - 1} in a task of {classes} classes")
    classes = classes or implied
    f1_p = paired_bootstrap_p(base_pred, head_pred, labels, resamples, classes)
    return Paired(len(labels), *flips(base_pred, head_pred, labels), f1_p, classes)
