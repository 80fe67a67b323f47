"""`lora-sst2 export`: a standalone Hugging Face model (--merged) or a PEFT adapter (--peft),
never over the user's files: into a folder that holds other files only our file names go,
and only what an earlier export listed is removed."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lora_core.adapter_config import AdapterConfig
from lora_core.commands.dvcrun import run
from lora_core.errors import LoraSst2Error
from lora_core.files import (
    EXPORT_MARKER,
    PROJECT_MARKERS,
    atomic_dir,
    check_replaceable,
    find_project_root,
    json_text,
)
from lora_core.pretrained import BASE_DIR, load_tokenizer, quiet_transformers

PIPELINE_DIRS = ("data", "models", "metrics", ".dvc", ".git")


def export_marker(option: str, config: AdapterConfig) -> dict:
    """The marker an export writes: who made the folder, and what PEFT's files cannot say
    (class names, text columns, max_length, a truncation other than head), which
    ``read_peft`` reads back."""
    return {
        "made_by": f"lora-sst2 export {option}",
        "base_model": config.base_model,
        "max_length": config.max_length,
        **({} if config.truncation == "head" else {"truncation": config.truncation}),
        "id2label": {str(i): name for i, name in enumerate(config.labels)},
        "text_columns": list(config.text_columns),
    }


def _tracked(folder: Path, where: str) -> bool:
    """Whether git tracks any file under ``folder``: False outside a git work tree; any
    other git failure ("dubious ownership", a damaged repository) is an error, never a no."""
    proc = run(["git", "-C", str(folder), "ls-files", "--", "."], "git ls-files")
    if proc.returncode == 0:
        return bool(proc.stdout.strip())
    said = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    if any("not a git repository" in line for line in said):
        return False
    why = said[0][:200] if said else f"exit {proc.returncode}"
    raise LoraSst2Error(f"{where}: git cannot say whether it tracks files there ({why})")


def check_export_target(
    out: str | Path,
    adapter_dir: str | Path,
    force: bool,
    option: str = "--merged",
    project: Path | None = None,
) -> None:
    """Refuse an export folder that would replace what the user or the pipeline owns.

    Never the working directory or a folder above it, a project, the adapter's folder, or
    (inside) the pipeline's own folders, those of the working directory's project and of
    ``project``; a non-empty folder only when an earlier export of ours left its marker
    there, or with ``force`` when git tracks nothing in it.
    """
    target = Path(out).resolve()
    # the nearest project as files.py knows one (.git, .dvc or dvc.yaml), not only dvc.yaml
    here = find_project_root(Path.cwd(), PROJECT_MARKERS)
    roots = {r.resolve() for r in (here, project) if r}
    owned = [Path(adapter_dir).resolve()] + [r / d for r in roots for d in PIPELINE_DIRS]
    if any(target == p or p in target.parents for p in owned):
        raise LoraSst2Error(
            f"export {option} {out}: that is (inside) a folder the pipeline owns; "
            "choose a new folder outside data/, models/ and metrics/, e.g. exported/"
        )
    check_replaceable(out)
    if target.is_file() or Path(out).is_symlink():
        raise LoraSst2Error(f"export {option} {out}: that is a file or a link, expected a folder")
    if not target.is_dir() or not any(target.iterdir()) or (target / EXPORT_MARKER).is_file():
        return
    if not force:
        raise LoraSst2Error(
            f"export {option} {out}: the folder is not empty and holds no earlier export; "
            "choose a new folder, or add --force to write beside its files"
        )
    if _tracked(target, f"export {option} {out}"):  # never into the project's own sources
        raise LoraSst2Error(f"export {option} {out}: git tracks files there; not even --force")


def _earlier_files(folder: Path) -> set[str]:
    """The files an earlier export listed in its marker (none when it lists none)."""
    try:
        listed = json.loads((folder / EXPORT_MARKER).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return set()
    return (
        {n for n in listed if isinstance(n, str) and "/" not in n}
        if isinstance(listed, list)
        else set()
    )


@contextmanager
def export_folder(out: str | Path, option: str, marker: dict) -> Iterator[Path]:
    """Yield a temporary folder to write an export into, then put it at ``out``.

    A new or empty ``out`` is replaced whole (files.atomic_dir). Into a folder that holds
    other files (an earlier export, or any with --force) only our file names go: a name the
    user's file holds there is refused before anything moves, and only the files an earlier
    export listed in its marker are removed. The marker, written last, lists ours.
    """
    target = Path(out)
    if not target.is_dir() or not any(target.iterdir()):
        with atomic_dir(out) as tmp:
            yield tmp
            _write_marker(tmp, marker)
        return
    earlier = _earlier_files(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".lora-sst2-export-{os.getpid()}-", dir=target))
    try:
        yield tmp
        ours = sorted(p.name for p in tmp.iterdir())
        theirs = [n for n in ours if (target / n).exists() and n not in earlier]
        if theirs:
            raise LoraSst2Error(
                f"export {option} {out}: {target / theirs[0]} is not from an earlier export; "
                "move it, or choose a new folder"
            )
        for name in ours:
            os.replace(tmp / name, target / name)
        for name in sorted(earlier - set(ours) - {EXPORT_MARKER}):
            if (target / name).is_file() and not (target / name).is_symlink():
                (target / name).unlink()
        _write_marker(target, {**marker, "files": ours})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_marker(folder: Path, marker: dict) -> None:
    if "files" not in marker:
        names = sorted(p.name for p in folder.iterdir() if p.name != EXPORT_MARKER)
        marker = {**marker, "files": names}
    (folder / EXPORT_MARKER).write_text(json_text(marker), encoding="utf-8")


def export_merged(
    adapter_dir: str | Path,
    out: str | Path,
    force: bool = False,
    base_dir: str | Path = BASE_DIR,
    project: Path | None = None,
) -> Path:
    """A plain Hugging Face folder: merged weights, config with the adapter's class names
    (id2label), and the tokenizer, which truncates at the adapter's max_length as predict
    does."""
    from lora_core.inference import load_for_inference  # torch: not for `lora-sst2 --help`
    from lora_core.inject import unload_lora

    check_export_target(out, adapter_dir, force, project=project)
    inference = load_for_inference(adapter_dir, base_dir=base_dir)
    unload_lora(inference.model)  # merged already: plain nn.Linear layers, stock BERT
    tokenizer = load_tokenizer(inference.config.base_model, base_dir)
    # pipeline(..., truncation=True) cuts at model_max_length: the length it was trained on
    tokenizer.model_max_length = inference.config.max_length
    marker = export_marker("--merged", inference.config)
    with quiet_transformers(), export_folder(out, "--merged", marker) as tmp:  # no shards bar
        inference.model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(out)


def export_peft(
    adapter_dir: str | Path,
    out: str | Path,
    force: bool = False,
    base_dir: str | Path = BASE_DIR,
    project: Path | None = None,
) -> Path:
    """PEFT's adapter folder: ``PeftModel.from_pretrained(base, out)`` gives our logits, with
    ``base`` loaded with ``num_labels`` as the marker's id2label; the marker names the classes
    and text columns, which PEFT's files do not hold."""
    from lora_core.adapter import load_trained  # torch: not for `lora-sst2 --help`
    from lora_core.inject import lora_state_dict
    from lora_core.peft import module_kinds, to_peft, write_peft

    check_export_target(out, adapter_dir, force, "--peft", project)
    model, config = load_trained(adapter_dir, base_dir)
    try:
        tensors, peft_config = to_peft(lora_state_dict(model), config, module_kinds(model))
    except LoraSst2Error as err:
        raise LoraSst2Error(f"export --peft {out}: {err}") from None
    marker = export_marker("--peft", config)
    with export_folder(out, "--peft", marker) as tmp:
        write_peft(tmp, tensors, peft_config)
    return Path(out)


def cut_note(marker: dict) -> str:
    """A line for an export whose adapter read long texts otherwise than from the head: a
    Hugging Face tokenizer or pipeline keeps only the first max_length tokens."""
    if marker.get("truncation", "head") == "head":
        return ""
    return (
        f"note: this adapter read long texts {marker['truncation']} (model.truncation); a "
        f"Hugging Face tokenizer keeps the first {marker['max_length']} tokens, so past "
        "that length its scores differ from predict's: cut such texts the same way first"
    )


def run_export(args: argparse.Namespace) -> int:
    where = {"base_dir": args.base_dir, "project": args.project_root}
    if args.peft is not None:
        out = export_peft(args.adapter, args.peft, args.force, **where)
        print(f"PEFT adapter written to {out}/ (load it with PeftModel.from_pretrained)")
    else:
        out = export_merged(args.adapter, args.merged, args.force, **where)
        print(f"merged model written to {out}/ (load it with AutoModelForSequenceClassification)")
    note = cut_note(json.loads((out / EXPORT_MARKER).read_text(encoding="utf-8")))
    if note:
        print(note, file=sys.stderr)
    return 0


def register(subparsers) -> None:
    """Add `export` to the CLI."""
    e = subparsers.add_parser(
        "export", help="write a merged, standalone Hugging Face model, or a PEFT adapter"
    )
    what = e.add_mutually_exclusive_group(required=True)
    what.add_argument("--merged", metavar="OUT", help="output folder for the merged model")
    what.add_argument("--peft", metavar="OUT", help="output folder for PEFT's adapter files")
    e.add_argument(
        "--adapter",
        help="the adapter to export: a folder with adapter.* or PEFT's files "
        "(default: the project's models/)",
    )
    e.add_argument(
        "--force",
        action="store_true",
        help="write into OUT even if it holds files not ours: beside them, never over them",
    )
    e.set_defaults(run=run_export, project_defaults={"adapter": "models"})
