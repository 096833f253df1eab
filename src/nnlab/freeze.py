"""Quarto pre-render hook: thaw a chapter whose experiments' code or config changed.

Quarto's ``freeze: auto`` re-executes a chapter only when its .qmd changes (quarto-cli #6793). This
script records, per chapter, the cache keys of the experiments it loads (``nnlab.load("name")``) and
the code fingerprints of the nnlab modules it imports (its plotting code), and removes the chapter's
``_freeze`` folder whenever one of them differs from the recorded one.
Run by Quarto as ``python -m nnlab.freeze`` from the project root; elsewhere (no ``_quarto.yml``)
it does nothing. Keys come from the cache's key memo, so an unchanged book costs no import of torch.
"""
from __future__ import annotations

import ast
import json
import re
import os
import shutil
import sys
import uuid
from pathlib import Path

from nnlab import cache, experiments
from nnlab.fingerprint import module_path

LOAD = re.compile(r"""nnlab\.load\(\s*["'](\w+)["']""")
PROVENANCE = re.compile(r"cache\.provenance\(")   # a page that tabulates every experiment
PYTHON_CELL = re.compile(r"^```+\s*\{python[^}]*\}\s*$(.*?)^```", re.M | re.S)
RECORD = "nnlab-keys.json"


def chapter_experiments(qmd: Path) -> list[str]:
    """Names of the experiments a chapter loads, in order of first use (all, if it shows provenance)."""
    text = qmd.read_text()
    if PROVENANCE.search(text):
        return list(experiments.available())
    return list(dict.fromkeys(LOAD.findall(text)))


def imported_modules(qmd: Path) -> list[str]:
    """The nnlab modules a chapter's python cells import (``from nnlab.plots import x`` gives
    ``nnlab.plots.x``), sorted."""
    found = set()
    for cell in PYTHON_CELL.findall(qmd.read_text()):
        if "nnlab" not in cell:
            continue
        try:
            tree = ast.parse(cell)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.split(".")[0] == "nnlab")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "nnlab":
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    found.add(sub if _is_module(sub) else node.module)
    return sorted(found)


def _is_module(name: str) -> bool:
    """Whether ``name`` is an nnlab module (not a function or class of one), found without importing."""
    return module_path(name) is not None


def chapter_keys(qmd: Path, profile: str | None = None) -> dict[str, str]:
    """What a chapter's output depends on: its experiments' cache keys and its modules' fingerprints."""
    keys = {name: cache.resolve(name, profile).key for name in chapter_experiments(qmd)}
    keys |= {f"module:{m}": cache.module_fingerprint(m) for m in imported_modules(qmd)}
    return keys


def thaw_stale(project: Path, profile: str | None = None) -> list[str]:
    """Remove the freeze of every chapter whose experiment keys changed; return their paths."""
    freeze = project / "_freeze"
    record_path = freeze / RECORD
    record = _read_record(record_path)
    thawed = []
    for qmd in sorted([project / "index.qmd", *(project / "chapters").glob("*.qmd")]):
        if not qmd.is_file():
            continue
        rel = qmd.relative_to(project).with_suffix("").as_posix()
        keys = chapter_keys(qmd, profile)
        frozen = freeze / rel
        if record.get(rel) != keys and frozen.exists():
            shutil.rmtree(frozen)
            thawed.append(rel)
        record[rel] = keys
    freeze.mkdir(exist_ok=True)
    tmp = freeze / f".{RECORD}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    try:                                      # atomic: a killed render leaves the old record or the new
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(tmp, record_path)
    finally:
        tmp.unlink(missing_ok=True)
    return thawed


def _read_record(path: Path) -> dict:
    """The recorded keys; an empty or damaged record counts as none (every frozen chapter is thawed)."""
    try:
        record = json.loads(path.read_bytes()) if path.is_file() else {}
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict):
        print(f"nnlab.freeze: {path} is damaged; every frozen chapter will be re-executed", file=sys.stderr)
        return {}
    return record


def main() -> int:
    if not Path("_quarto.yml").is_file():
        print("nnlab.freeze: no _quarto.yml here, so this is not the book's root: nothing to do",
              file=sys.stderr)
        return 0
    for rel in thaw_stale(Path.cwd()):
        print(f"nnlab.freeze: experiments of {rel} changed; it will be re-executed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
