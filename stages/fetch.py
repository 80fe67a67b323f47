"""Stage fetch: validate all of params.yaml, then make sure data.dir holds the raw data.

dvc.yaml runs it first, every time (``always_changed``), and every other stage depends on
its output. So a bad value in params.yaml stops `dvc repro` before DVC removes any stage's
outputs, and a fresh clone's missing data.dir is downloaded from the hub (data.source,
data.config) before DVC looks for it as the prepare stage's dependency.
"""

from __future__ import annotations

import argparse
import sys

from lora_core.config import load_params
from lora_core.data import raw_files
from lora_core.errors import exit_on_user_error
from lora_core.files import write_json
from lora_core.hub import ensure_raw


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="data/fetch.json")
    args = parser.parse_args(argv)
    data = load_params(args.params).data  # validates every section, not only data
    if not raw_files(data.dir):
        print(f"downloading {data.source}/{data.config} into {data.dir}/")
    raw = ensure_raw(data.dir, data.source, data.config)
    # What prepare reads, and nothing that changes between a download and the next run,
    # so that prepare re-runs only when the files themselves change.
    write_json(args.out, {"dir": data.dir, "files": {k: p.name for k, p in raw.items()}})
    print(f"params valid; raw data in {data.dir}/: {', '.join(p.name for p in raw.values())}")


if __name__ == "__main__":
    sys.exit(main())
