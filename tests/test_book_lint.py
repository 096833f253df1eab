"""The book's sources are consistent: chapters exist, citations resolve, cross-references have
targets, figures have captions, labels are unique, chapter ids follow the file names."""
from __future__ import annotations

import re
from collections import Counter

import pytest

from quarto_source import ROOT, book_chapters, parse

LISTED = book_chapters()
QMD = [p for p in LISTED if p.suffix == ".qmd" and p.is_file()]
REF = re.compile(r"(?<![\w.\[-])-?@((?:fig|tbl|eq|sec)-[\w-]*\w)")
CITE = re.compile(r"(?<![\w.])-?@([A-Za-z][\w]*(?:[:.-][\w]+)*)")
ANCHOR = re.compile(r"\{#((?:fig|tbl|eq|sec)-[\w-]+)[^}]*\}")
BIB_KEY = re.compile(r"^@\w+\{([^,\s]+),", re.M)
CODE_SPAN = re.compile(r"`[^`]*`")


def _prose(chapter) -> str:
    return "\n".join(CODE_SPAN.sub("", text) for _, text in chapter.prose)


def _labels(chapter) -> list[str]:
    labels = [str(c.options["label"]) for c in chapter.cells if "label" in c.options]
    labels += ANCHOR.findall("\n".join(t for _, t in chapter.prose))
    return labels


CHAPTERS = {p: parse(p) for p in QMD}
ALL_LABELS = Counter(label for ch in CHAPTERS.values() for label in _labels(ch))


def test_every_listed_chapter_exists():
    missing = [str(p.relative_to(ROOT)) for p in LISTED if not p.is_file()]
    assert not missing, f"listed in _quarto.yml but missing: {missing}"


def test_labels_are_unique():
    assert [k for k, n in ALL_LABELS.items() if n > 1] == []


@pytest.mark.parametrize("path", QMD, ids=[p.stem for p in QMD])
def test_citations_resolve(path):
    keys = set(BIB_KEY.findall((ROOT / "references.bib").read_text()))
    cited = {k for k in CITE.findall(_prose(CHAPTERS[path]))
             if not re.match(r"(fig|tbl|eq|sec)-", k)}
    assert cited - keys == set(), f"{path.name} cites keys missing from references.bib"


@pytest.mark.parametrize("path", QMD, ids=[p.stem for p in QMD])
def test_cross_references_have_targets(path):
    refs = set(REF.findall(_prose(CHAPTERS[path])))
    assert refs - set(ALL_LABELS) == set(), f"{path.name} refers to labels that do not exist"


@pytest.mark.parametrize("path", QMD, ids=[p.stem for p in QMD])
def test_figures_have_captions_and_labels(path):
    for cell in CHAPTERS[path].cells:
        label = str(cell.options.get("label", ""))
        if label.startswith("fig-"):
            assert cell.options.get("fig-cap"), f"{path.name}:{cell.line} figure {label} has no fig-cap"
        if "fig-cap" in cell.options:
            assert label.startswith("fig-"), f"{path.name}:{cell.line} has a fig-cap but no fig- label"
        if label.startswith("tbl-"):
            assert cell.options.get("tbl-cap"), f"{path.name}:{cell.line} table {label} has no tbl-cap"


@pytest.mark.parametrize("path", [p for p in QMD if p.parent.name == "chapters"],
                         ids=[p.stem for p in QMD if p.parent.name == "chapters"])
def test_chapter_heading_carries_its_section_id(path):
    headings = [t for _, t in CHAPTERS[path].prose if t.startswith("# ")]
    assert headings, f"{path.name} has no level-1 heading"
    assert "{#sec-" + path.stem + "}" in headings[0], \
        f"{path.name}: first heading must end with {{#sec-{path.stem}}} so other chapters can cite it"
