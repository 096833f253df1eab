"""Each chapter, executed (smoke profile) with its inline values inserted as Quarto inserts them, converts
with real pandoc to HTML and to Typst without a single warning — such as `Could not convert TeX math`,
which is what a reader sees as a red MathJax error or as raw `$…$` in the PDF.

Quarto converts with pandoc from Pandoc's Markdown (quarto.org/docs/authoring/markdown-basics.html);
the pandoc here is the one the `pypandoc-binary` wheel ships. HTML is converted with `--mathml`, so that
pandoc parses every TeX formula as the browser's MathJax would (with `--mathjax` it copies TeX unread);
Typst conversion parses TeX math in any case. Quarto's own filters (cross-references, callouts) are not
run: pandoc without them leaves those constructs alone and does not warn about them."""
from __future__ import annotations

import subprocess

import pytest

from quarto_source import book_chapters, execute, quarto_markdown

CHAPTERS = [p for p in book_chapters() if p.suffix == ".qmd" and p.is_file()]
READER = "markdown"  # Pandoc's Markdown, Quarto's input format


@pytest.fixture(scope="module")
def pandoc():
    pypandoc = pytest.importorskip("pypandoc", reason="the dev extra installs pypandoc-binary")
    return pypandoc.get_pandoc_path()


def convert(pandoc: str, markdown: str, to: str) -> str:
    """pandoc's warnings (stderr) for converting ``markdown`` to ``to``."""
    extra = ["--mathml"] if to == "html" else []
    run = subprocess.run([pandoc, "--from", READER, "--to", to, *extra, "--output", "/dev/null"],
                         input=markdown, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"pandoc --to {to} failed: {run.stderr}"
    return run.stderr.strip()


def test_pandoc_reports_bad_math(pandoc):
    """The test's own check: an inline value inserted into math as Quarto inserts it (escaped
    markdown, 0\\.25) is reported by pandoc; the same span built whole as math is not."""
    assert "Could not convert TeX math" in convert(pandoc, "Loss $L = 0\\.25$.\n", "typst")
    assert "Could not convert TeX math" in convert(pandoc, "Loss $L = 0\\.25$.\n", "html")
    assert convert(pandoc, "Loss $L = 0.25$.\n", "typst") == ""
    assert convert(pandoc, "Loss $L = 0.25$.\n", "html") == ""


@pytest.mark.parametrize("to", ["html", "typst"])
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_converts_without_warnings(path, to, pandoc):
    done = execute(path)
    if done.error:
        pytest.fail(f"the chapter does not execute (see test_chapters): {done.error.splitlines()[0]}",
                    pytrace=False)
    stderr = convert(pandoc, quarto_markdown(done), to)
    if stderr:  # one headline per warning ("[WARNING] Could not convert TeX math …"), details below it
        headlines = [w for w in stderr.splitlines() if w.startswith("[")] or [stderr]
        pytest.fail(f"{path.name} → {to}: pandoc warnings ({len(headlines)}):\n" + "\n".join(headlines),
                    pytrace=False)
