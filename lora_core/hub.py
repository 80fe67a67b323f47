"""The hub dataset ``data.source``/``data.config``, written into data.dir when it holds no raw
files (a fresh clone's SST-2); files already there are never touched."""

from __future__ import annotations

from pathlib import Path

from lora_core.data import jsonl_text, raw_files
from lora_core.errors import DataError
from lora_core.files import quiet_hub, staged
from lora_core.tables import first_line


def ensure_raw(raw_dir: str | Path, source: str, config: str) -> dict[str, Path]:
    """The raw files in ``raw_dir``; when it has none, the hub dataset written there."""
    found = raw_files(raw_dir)
    if found:
        return found
    try:
        import datasets

        with quiet_hub():
            hub = datasets.load_dataset(source, config)
    except Exception as err:  # offline, unknown id, hub errors: all mean "fill the folder"
        raise DataError(
            f"no train file in {raw_dir}/, and {source}/{config} cannot be downloaded "
            f"({first_line(err)}); put your files there (README 'Your own data') or GLUE's "
            "SST-2 TSVs (README 'Offline')"
        ) from None
    # Every split written under a temporary name, then all renamed at once: an interrupted
    # download leaves no file behind (so the next run downloads again), and nothing else
    # the folder holds is touched.
    with staged() as out:
        for split in hub:
            rows = _with_label_names(hub[split])
            if rows is not None:
                out.file(Path(raw_dir) / f"{split}.jsonl").write_text(jsonl_text(rows), "utf-8")
    return raw_files(raw_dir)


def _with_label_names(split) -> list[dict] | None:
    """The split's rows with class names for a ClassLabel column; None for a split whose
    labels are hidden (GLUE's test split: all -1)."""
    from datasets import ClassLabel

    rows = split.to_list()
    for column, feature in split.features.items():
        if isinstance(feature, ClassLabel):
            if all(row[column] < 0 for row in rows):
                return None
            for row in rows:
                row[column] = feature.int2str(row[column])
    return rows
