"""Every chapter of the book executes, cell by cell and inline expression by inline expression, in a
fresh Jupyter kernel with the smoke profile — as Quarto would execute it, without Quarto."""
from __future__ import annotations

import os
import re

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from quarto_source import ROOT, Cell, book_chapters, parse

ANSI = re.compile(r"\x1b\[[0-9;]*m")
CHAPTERS = [p for p in book_chapters() if p.suffix == ".qmd"]


def _notebook(chapter):
    """One code cell per executable cell; an inline expression becomes a cell printing str(expr)."""
    nb = nbformat.v4.new_notebook()
    where = []
    for item in chapter.items:
        if isinstance(item, Cell):
            if item.options.get("eval") is False:
                continue
            nb.cells.append(nbformat.v4.new_code_cell(item.source))
            where.append((item, f"cell at line {item.line}"))
        else:
            code = f"print(str({item.expr}))"
            nb.cells.append(nbformat.v4.new_code_cell(code))
            where.append((item, f"inline expression `{item.expr}` at line {item.line}"))
    return nb, where


def _has_image(outputs) -> bool:
    return any(out.get("output_type") in ("display_data", "execute_result")
               and any(k.startswith("image/") for k in out.get("data", {})) for out in outputs)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_executes(path, monkeypatch):
    assert path.is_file(), f"{path.relative_to(ROOT)} is listed in _quarto.yml but does not exist"
    chapter = parse(path)
    nb, where = _notebook(chapter)
    monkeypatch.setenv("NNLAB_PROFILE", "smoke")
    monkeypatch.setenv("NNLAB_QUIET", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # let the kernel draw inline, as Quarto does
    client = NotebookClient(nb, kernel_name="python3", timeout=900,
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel(env=dict(os.environ)):
        for index, cell in enumerate(nb.cells):
            item, label = where[index]
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as err:
                pytest.fail(f"{path.name}: {label} failed:\n{ANSI.sub('', str(err))}", pytrace=False)
            if isinstance(item, Cell) and str(item.options.get("label", "")).startswith("fig-"):
                assert _has_image(cell.outputs), \
                    f"{path.name}: figure cell {item.options['label']} (line {item.line}) drew no image"
            if not isinstance(item, Cell):
                text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
                assert text.strip(), f"{path.name}: {label} produced no text"
                # Quarto doubles backslashes in inline output (quarto-cli #11291): keep LaTeX in the source
                assert "\\" not in text, f"{path.name}: {label} printed a backslash: {text.strip()!r}"
