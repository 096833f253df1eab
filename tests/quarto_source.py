"""Reading Quarto sources the way Quarto does, for the tests: chapters, cells, inline code, labels;
executing a chapter as Quarto's Jupyter engine would, and the markdown Quarto then hands to pandoc."""
from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(`{3,})\s*(\{[^}]*\}|[\w+-]*)\s*$")
# Quarto's own pattern for an inline expression (quarto-cli src/core/jupyter/jupyter-inline.ts and
# src/resources/jupyter/notebook.py): not preceded by a backtick, so ``...`{python} x`...`` is literal.
INLINE = re.compile(r"(?<!`)`\{python\}[ \t]([^`]+)`")
OPTION = re.compile(r"^#\|\s*([\w-]+)\s*:\s*(.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# pandoc's markdown lets a backslash escape any ASCII punctuation character (all_symbols_escapable)
PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


@dataclass
class Cell:
    source: str
    options: dict
    line: int           # line of the opening fence (1-based)
    end: int = 0        # line of the closing fence


@dataclass
class Inline:
    expr: str
    line: int


@dataclass
class Chapter:
    path: Path
    items: list = field(default_factory=list)  # Cells and Inlines in document order
    prose: list = field(default_factory=list)  # (line number, text) outside code blocks
    lines: list = field(default_factory=list)  # the source, as lines
    kinds: list = field(default_factory=list)  # per line: "front", "cell", "fence" or "prose"

    @property
    def cells(self) -> list[Cell]:
        return [i for i in self.items if isinstance(i, Cell)]


def book_chapters() -> list[Path]:
    """Every file listed in _quarto.yml's book.chapters (parts included), in order."""
    book = yaml.safe_load((ROOT / "_quarto.yml").read_text())["book"]
    files = []
    for entry in book["chapters"]:
        if isinstance(entry, str):
            files.append(entry)
        else:
            files.extend(entry.get("chapters", []))
    return [ROOT / f for f in files]


def parse(path: Path) -> Chapter:
    """Split a .qmd into executable python cells, inline expressions and prose lines."""
    chapter = Chapter(path)
    lines = chapter.lines = path.read_text().splitlines()
    kinds = chapter.kinds = ["prose"] * len(lines)
    i = 0
    in_front_matter = bool(lines) and lines[0].strip() == "---"
    if in_front_matter:
        i = 1
        while i < len(lines) and lines[i].strip() != "---":
            i += 1
        i += 1
        kinds[:i] = ["front"] * min(i, len(lines))
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m:
            ticks, lang = m.groups()
            start = i
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith(ticks):
                body.append(lines[i])
                i += 1
            i += 1
            is_cell = lang.startswith("{python")
            kinds[start:i] = ["cell" if is_cell else "fence"] * (min(i, len(lines)) - start)
            if is_cell:
                options = {}
                for b in body:
                    om = OPTION.match(b)
                    if not om:
                        break
                    options[om.group(1)] = yaml.safe_load(om.group(2)) if om.group(2) else None
                chapter.items.append(Cell("\n".join(body), options, start + 1, i))
            continue
        chapter.prose.append((i + 1, lines[i]))
        for im in INLINE.finditer(lines[i]):
            chapter.items.append(Inline(im.group(1).strip(), i + 1))
        i += 1
    return chapter


# ---------------------------------------------------------------------------------------------
# Executing a chapter as Quarto does
# ---------------------------------------------------------------------------------------------

# Quarto evaluates an inline expression as a Jupyter "user expression": the kernel formats the value
# with IPython's display formatter (InteractiveShell.user_expressions) and Quarto inserts the text/markdown
# form raw if there is one, otherwise the text/plain form, a repr (so a numpy scalar prints as
# np.int64(4); a str prints without its quotes), as escaped markdown.
_INLINE_HELPER = '''
def __quarto_inline__(value):
    import json
    from IPython import get_ipython
    bundle, _ = get_ipython().display_formatter.format(value)
    print(json.dumps({"type": type(value).__module__ + "." + type(value).__qualname__,
                      "str": value if isinstance(value, str) else None,
                      "markdown": bundle.get("text/markdown"),
                      "plain": bundle.get("text/plain")}))
'''


@dataclass
class Value:
    """An inline expression's value, as Quarto receives it from the kernel."""
    type: str
    str: str | None
    markdown: str | None
    plain: str | None

    @property
    def text(self) -> str:
        """What a reader sees: the markdown, the string itself, or the repr."""
        if self.markdown is not None:
            return self.markdown
        return self.str if self.str is not None else (self.plain or "")

    @property
    def inserted(self) -> str:
        """What Quarto writes into the markdown in place of the expression: a Markdown object raw,
        anything else as escaped text (quarto-cli PR #6295; backslashes doubled, quarto-cli #11291)."""
        if self.markdown is not None:
            return self.markdown
        return PUNCTUATION.sub(r"\\\1", self.text)


@dataclass
class Executed:
    chapter: Chapter
    error: str | None = None                     # the first failure, if the chapter did not run through
    outputs: dict = field(default_factory=dict)  # id(Cell) -> the cell's outputs
    values: dict = field(default_factory=dict)   # id(Inline) -> Value


def _where(item) -> str:
    if isinstance(item, Cell):
        return f"cell at line {item.line}"
    return f"inline expression `{item.expr}` at line {item.line}"


@functools.cache
def execute(path: Path) -> Executed:
    """Run a chapter in a fresh python3 kernel with the smoke profile, cell by cell and inline
    expression by inline expression, as Quarto's Jupyter engine would (once per test session: the
    chapter tests, the lint and the pandoc test share it)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    chapter = parse(path)
    done = Executed(chapter)
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(_INLINE_HELPER))
    items = [None]
    for item in chapter.items:
        if isinstance(item, Cell):
            if item.options.get("eval") is False:
                continue
            nb.cells.append(nbformat.v4.new_code_cell(item.source))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(f"__quarto_inline__((\n{item.expr}\n))"))
        items.append(item)
    env = dict(os.environ, NNLAB_PROFILE="smoke", NNLAB_QUIET="1")
    env.pop("MPLBACKEND", None)  # let the kernel draw inline, as Quarto does
    client = NotebookClient(nb, kernel_name="python3", timeout=900,
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel(env=env):
        for index, cell in enumerate(nb.cells):
            item = items[index]
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as err:
                done.error = f"{path.name}: {_where(item)} failed:\n{ANSI.sub('', str(err))}"
                break
            if isinstance(item, Cell):
                done.outputs[id(item)] = cell.outputs
            elif isinstance(item, Inline):
                text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
                done.values[id(item)] = Value(**json.loads(text))
    return done


# ---------------------------------------------------------------------------------------------
# The markdown Quarto hands to pandoc
# ---------------------------------------------------------------------------------------------

def _fenced(text: str, attrs: str = "") -> list[str]:
    ticks = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
    return [f"{ticks}{attrs}", *text.rstrip("\n").splitlines(), ticks]


def _data(output, mime):
    value = output.get("data", {}).get(mime)
    return "".join(value) if isinstance(value, list) else value


def _cell_markdown(cell: Cell, outputs) -> list[str]:
    """A cell as Quarto writes it for pandoc: its code (without the #| options) unless echo is false,
    then each output: markdown raw (and everything raw with `output: asis`), images as figures with the
    cell's caption, html raw, other text as code blocks."""
    out = [""]
    if cell.options.get("echo") is not False:
        code = "\n".join(line for line in cell.source.splitlines() if not OPTION.match(line))
        out += [*_fenced(code, "python"), ""]
    if cell.options.get("output") is False:
        return out
    asis = cell.options.get("output") == "asis"
    caption = str(cell.options.get("fig-cap") or "")
    for o in outputs:
        if o.get("output_type") == "stream":
            text = o.get("text", "")
            out += [text, ""] if asis else [*_fenced(text), ""]
        elif o.get("output_type") in ("display_data", "execute_result"):
            images = [m for m in o.get("data", {}) if m.startswith("image/")]
            if _data(o, "text/markdown") is not None:
                out += [_data(o, "text/markdown"), ""]
            elif images:
                out += [f"![{caption}](figure.{images[0].split('/')[1].split('+')[0]})", ""]
                caption = ""
            elif _data(o, "text/html") is not None:
                out += [*_fenced(_data(o, "text/html"), "{=html}"), ""]
            elif _data(o, "text/plain") is not None:
                text = _data(o, "text/plain")
                out += [text, ""] if asis else [*_fenced(text), ""]
    if cell.options.get("tbl-cap"):
        out += [f": {cell.options['tbl-cap']}", ""]
    return out


def quarto_markdown(done: Executed) -> str:
    """The chapter's markdown after execution, as Quarto passes it to pandoc: inline expressions
    replaced by their inserted values, cells by their code and outputs."""
    chapter = done.chapter
    inlines: dict[int, list] = {}
    for item in chapter.items:
        if isinstance(item, Inline):
            inlines.setdefault(item.line, []).append(done.values.get(id(item)))
    cells = {c.line: c for c in chapter.cells}
    out = []
    i = 0
    while i < len(chapter.lines):
        kind, line = chapter.kinds[i], chapter.lines[i]
        if kind == "cell" and (i + 1) in cells:
            cell = cells[i + 1]
            if cell.options.get("include") is not False:
                out += _cell_markdown(cell, done.outputs.get(id(cell), []))
            i = max(cell.end, i + 1)
            continue
        if kind == "prose":
            queue = list(inlines.get(i + 1, []))
            line = INLINE.sub(lambda m: queue.pop(0).inserted if queue and queue[0] else m.group(0), line)
        if kind != "front":
            out.append(line)
        i += 1
    return "\n".join(out) + "\n"

