"""The book's sources are consistent: chapters exist, citations resolve, cross-references have
targets, figures have captions, labels are unique, chapter ids follow the file names; inline values
survive Quarto's insertion (no value in math or code, no numpy repr, no accidental list); the project's
metadata is complete."""
from __future__ import annotations

import re
from collections import Counter

import pytest
import yaml

from quarto_source import INLINE, ROOT, Inline, Value, book_chapters, execute, parse

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


# ---------------------------------------------------------------------------------------------
# What Quarto does with inline values (see quarto_source.Value.inserted)
# ---------------------------------------------------------------------------------------------

INLINE_MATCH = re.compile(r"(?<!`)`\{python\}[ \t][^`]+`")  # Quarto's pattern (quarto_source.INLINE)
SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)      # a code span, any number of backticks
DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?![\s$])((?:[^$\\]|\\.)+?)(?<![\s\\])\$(?!\d)", re.S)
MARK = re.compile(r"\x00(\d+)\x00")
LIST_START = re.compile(r"^\s*(\d+[.)]|[-+*]|#+)(\s|$)")


def _prose_text(chapter) -> str:
    """The prose as one text, other lines blanked (offsets map back to line numbers)."""
    return "\n".join(line if kind == "prose" else "" for line, kind in zip(chapter.lines, chapter.kinds))


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def inline_misplacements(chapter) -> list[str]:
    """Inline expressions inside $…$, $$…$$ or a code span, as "line N: … inside …"."""
    text = _prose_text(chapter)
    exprs = []

    def mark(m):
        exprs.append((m.group(0), _line(text, m.start())))
        return f"\x00{len(exprs) - 1}\x00"

    marked = INLINE_MATCH.sub(mark, text)
    problems = [f"line {_line(marked, m.start())}: `{{python}}` inside a code span prints literally: "
                f"{m.group(0)}" for m in SPAN.finditer(marked) if "{python}" in m.group(0)]
    unspanned = SPAN.sub(lambda m: " " * len(m.group(0)), marked)
    inside = set()
    rest = unspanned
    for pattern, kind in ((DISPLAY_MATH, "$$…$$"), (INLINE_MATH, "$…$")):
        for m in pattern.finditer(rest):
            for k in MARK.findall(m.group(0)):
                inside.add(int(k))
                expr, line = exprs[int(k)]
                problems.append(f"line {line}: {expr} inside {kind}")
        rest = pattern.sub(lambda m: " " * len(m.group(0)), rest)
    # a `$` touching a value: whether pandoc closes the math there depends on the value (a closing `$`
    # followed by a digit does not close), so the value can end up inside the math
    for m in re.finditer(r"\$\x00(\d+)\x00|\x00(\d+)\x00(?=\$)", unspanned):
        k = int(m.group(1) or m.group(2))
        if k not in inside:
            inside.add(k)
            expr, line = exprs[k]
            problems.append(f"line {line}: {expr} touches a math delimiter $")
    return sorted(problems, key=lambda p: int(p.split(":")[0].split()[1]))


def test_inline_misplacements_are_found(tmp_path):
    """The lint's own check, on a chapter with each mistake and each correct form."""
    qmd = tmp_path / "x.qmd"
    qmd.write_text("# X\n\n"
                   "A $w = `{python} w`$ and $$\n"
                   "b = `{python} b`\n$$ and `seed={python} s` in code.\n"
                   "Fine: `{python} n` costs \\$5 and $x$ `{python} y` $z$; `{python} nnlab.report.math(t)`;\n"
                   "``literal `{python} x` syntax``.\n"
                   "Touching: $x_0 = ($`{python} x0`$)$.\n"
                   "```{python}\nx = '$`{python} q`$'\n```\n")
    found = inline_misplacements(parse(qmd))
    assert [p.split(":")[0] for p in found] == ["line 3", "line 4", "line 5", "line 8"], found
    assert "$…$" in found[0] and "$$…$$" in found[1] and "code span" in found[2]
    assert "touches a math delimiter" in found[3]


@pytest.mark.parametrize("path", QMD, ids=[p.stem for p in QMD])
def test_no_inline_expression_in_math_or_code_span(path):
    """Quarto inserts an inline value as escaped markdown (0.25 becomes 0\\.25): inside $…$ or $$…$$
    TeX receives the backslashes, and inside a code span the expression prints literally. A value
    that belongs in math is built whole with nnlab.report.math."""
    problems = inline_misplacements(CHAPTERS[path])
    if problems:
        pytest.fail(f"{path.name}: misplaced inline expressions ({len(problems)}):\n" + "\n".join(problems),
                    pytrace=False)


def _executed_values(path):
    done = execute(path)
    if done.error:
        pytest.fail(f"the chapter does not execute (see test_chapters): {done.error.splitlines()[0]}",
                    pytrace=False)
    return [(item, done.values[id(item)]) for item in done.chapter.items if isinstance(item, Inline)]


def numpy_reprs(values) -> list[str]:
    """Inline values that print as a numpy repr."""
    return [f"line {item.line}: `{item.expr}` prints {value.text!r}" for item, value in values
            if value.markdown is None and (value.type.startswith("numpy.")
                                           or re.search(r"\bnp\.\w+\(|\bnumpy\.", value.text))]


def accidental_lists(lines, values) -> list[str]:
    """Lines that start with an inline value reading like a list marker ("976.", "- 3", "+ x")."""
    return [f"line {item.line}: starts with `{item.expr}` = {value.text!r}" for item, value in values
            if INLINE_MATCH.match(lines[item.line - 1].lstrip())
            and INLINE.match(lines[item.line - 1].lstrip()).group(1).strip() == item.expr
            and LIST_START.match(value.text)]


def test_value_checks_find_their_cases():
    """The two checks' own test, on values as the kernel reports them."""
    lines = ["`{python} n` chosen on the validation points", "about `{python} k`.", "`{python} d` words"]
    values = [(Inline("n", 1), Value("numpy.int64", None, None, "np.int64(20)")),
              (Inline("k", 2), Value("builtins.str", "976", None, "'976'")),
              (Inline("d", 3), Value("builtins.str", "+ decay", None, "'+ decay'"))]
    assert [p.split(":")[0] for p in numpy_reprs(values)] == ["line 1"]
    assert [p.split(":")[0] for p in accidental_lists(lines, values)] == ["line 3"]
    values[0] = (Inline("n", 1), Value("builtins.str", "20.", None, "'20.'"))
    assert [p.split(":")[0] for p in accidental_lists(lines, values)] == ["line 1", "line 3"]
    assert numpy_reprs(values) == []


@pytest.mark.parametrize("path", QMD, ids=[p.stem for p in QMD])
def test_inline_values_are_not_numpy_reprs(path):
    """A numpy scalar reaches Quarto as its repr: the page shows np.int64(481). Use nnlab.report."""
    bad = numpy_reprs(_executed_values(path))
    if bad:
        pytest.fail(f"{path.name}:\n" + "\n".join(bad), pytrace=False)


@pytest.mark.parametrize("path", QMD, ids=[p.stem for p in QMD])
def test_no_line_starts_like_a_list_after_substitution(path):
    """A line that starts with an inline value reading "976." or "- 3" becomes a list item."""
    bad = accidental_lists(CHAPTERS[path].lines, _executed_values(path))
    if bad:
        pytest.fail(f"{path.name}:\n" + "\n".join(bad), pytrace=False)


# ---------------------------------------------------------------------------------------------
# The project's metadata
# ---------------------------------------------------------------------------------------------

CONFIG = yaml.safe_load((ROOT / "_quarto.yml").read_text())


def test_repo_actions_have_a_repo_url():
    """Quarto warns and shows no links for repo-actions without repo-url."""
    book = CONFIG["book"]
    if book.get("repo-actions"):
        assert str(book.get("repo-url", "")).startswith("https://"), "repo-actions needs book.repo-url"
        assert book.get("repo-branch"), "repo-actions link to book.repo-branch (default: main)"


def test_site_links_the_pdf():
    assert "pdf" in CONFIG["book"].get("downloads", []), "book.downloads should list pdf"


def test_addresses_agree_with_citation_file():
    """_quarto.yml is the one place for the project's addresses; CITATION.cff repeats them."""
    book = CONFIG["book"]
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["repository-code"] == book["repo-url"]
    assert cff["url"] == book["site-url"] == CONFIG["citation"]["url"]
    assert cff["preferred-citation"]["url"] == book["site-url"]
    assert cff["title"] == book["title"]


def test_gitignore_holds_quarto_lines_verbatim():
    """Quarto appends these lines to .gitignore unless it finds them exactly (whole trimmed lines,
    quarto-cli src/project/project-gitignore.ts); a render must leave the tree clean."""
    lines = {line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()}
    assert {"/.quarto/", "**/*.quarto_ipynb"} <= lines
