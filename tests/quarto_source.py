"""Reading Quarto sources the way Quarto does, for the tests: chapters, cells, inline code, labels."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(`{3,})\s*(\{[^}]*\}|[\w+-]*)\s*$")
INLINE = re.compile(r"`\{python\}\s+([^`]+)`")
OPTION = re.compile(r"^#\|\s*([\w-]+)\s*:\s*(.*)$")


@dataclass
class Cell:
    source: str
    options: dict
    line: int


@dataclass
class Inline:
    expr: str
    line: int


@dataclass
class Chapter:
    path: Path
    items: list = field(default_factory=list)  # Cells and Inlines in document order
    prose: list = field(default_factory=list)  # (line number, text) outside code blocks

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
    lines = path.read_text().splitlines()
    i = 0
    in_front_matter = bool(lines) and lines[0].strip() == "---"
    if in_front_matter:
        i = 1
        while i < len(lines) and lines[i].strip() != "---":
            i += 1
        i += 1
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
            if lang.startswith("{python"):
                options = {}
                for b in body:
                    om = OPTION.match(b)
                    if not om:
                        break
                    options[om.group(1)] = yaml.safe_load(om.group(2)) if om.group(2) else None
                chapter.items.append(Cell("\n".join(body), options, start + 1))
            continue
        chapter.prose.append((i + 1, lines[i]))
        for im in INLINE.finditer(lines[i]):
            chapter.items.append(Inline(im.group(1).strip(), i + 1))
        i += 1
    return chapter
