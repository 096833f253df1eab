"""Quarto pre-render hook: thaw a chapter whose experiments' code or config changed.

Quarto's ``freeze: auto`` re-executes a chapter only when its .qmd changes (quarto-cli #6793). This
script records, per chapter, the cache keys of the experiments it loads (``nnlab.load("name")``) and
removes the chapter's ``_freeze`` folder whenever one of those keys differs from the recorded one.
Run by Quarto as ``python -m nnlab.freeze`` from the project root.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

from nnlab import cache, experiments

LOAD = re.compile(r"""nnlab\.load\(\s*["'](\w+)["']""")
PROVENANCE = re.compile(r"cache\.provenance\(")   # a page that tabulates every experiment
RECORD = "nnlab-keys.json"


def chapter_experiments(qmd: Path) -> list[str]:
    """Names of the experiments a chapter loads, in order of first use (all, if it shows provenance)."""
    text = qmd.read_text()
    if PROVENANCE.search(text):
        return list(experiments.available())
    return list(dict.fromkeys(LOAD.findall(text)))


def thaw_stale(project: Path, profile: str | None = None) -> list[str]:
    """Remove the freeze of every chapter whose experiment keys changed; return their paths."""
    freeze = project / "_freeze"
    record_path = freeze / RECORD
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    thawed = []
    for qmd in sorted([project / "index.qmd", *(project / "chapters").glob("*.qmd")]):
        if not qmd.is_file():
            continue
        rel = qmd.relative_to(project).with_suffix("").as_posix()
        keys = {name: cache.plan(name, profile).key for name in chapter_experiments(qmd)}
        frozen = freeze / rel
        if record.get(rel) != keys and frozen.exists():
            shutil.rmtree(frozen)
            thawed.append(rel)
        record[rel] = keys
    freeze.mkdir(exist_ok=True)
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True))
    return thawed


def main() -> int:
    for rel in thaw_stale(Path.cwd()):
        print(f"nnlab.freeze: experiments of {rel} changed; it will be re-executed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
