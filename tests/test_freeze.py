"""The pre-render hook thaws exactly the chapters whose experiments' keys changed."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nnlab import cache, freeze

from test_cache import edit_code, toy_experiment  # noqa: F401  (fixture)


def _frozen(project, stem):
    folder = project / "_freeze" / "chapters" / stem / "execute-results"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "html.json").write_text("{}")
    return folder.parent


def test_thaws_only_chapters_whose_experiment_changed(toy_experiment, tmp_path, monkeypatch):  # noqa: F811
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "uses-toy.qmd").write_text('```{python}\nres = nnlab.load("toy")\n```\n')
    (tmp_path / "chapters" / "plain.qmd").write_text("# Plain\n")
    assert freeze.chapter_experiments(tmp_path / "chapters" / "uses-toy.qmd") == ["toy"]
    freeze.thaw_stale(tmp_path, "full")  # records the current keys
    toy, plain = _frozen(tmp_path, "uses-toy"), _frozen(tmp_path, "plain")
    assert freeze.thaw_stale(tmp_path, "full") == [] and toy.exists()
    edit_code(monkeypatch)
    assert freeze.thaw_stale(tmp_path, "full") == ["chapters/uses-toy"]
    assert not toy.exists() and plain.exists()


def test_a_page_showing_provenance_is_thawed_when_any_experiment_changes(toy_experiment, tmp_path,  # noqa: F811
                                                                          monkeypatch):
    (tmp_path / "chapters").mkdir()
    (tmp_path / "index.qmd").write_text('```{python}\ntable = nnlab.cache.provenance()\n```\n')
    assert freeze.chapter_experiments(tmp_path / "index.qmd") == ["toy"]
    freeze.thaw_stale(tmp_path, "full")
    index = tmp_path / "_freeze" / "index"
    (index / "execute-results").mkdir(parents=True)
    assert freeze.thaw_stale(tmp_path, "full") == [] and index.exists()
    edit_code(monkeypatch)
    assert freeze.thaw_stale(tmp_path, "full") == ["index"]
    assert not index.exists()


def test_a_chapter_is_thawed_when_the_plotting_code_it_imports_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLAB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "chapters").mkdir()
    qmd = tmp_path / "chapters" / "plots-only.qmd"
    qmd.write_text("```{python}\nfrom nnlab.plots import exp1a as p\nfrom nnlab.cache import load\n```\n")
    assert freeze.imported_modules(qmd) == ["nnlab.cache", "nnlab.plots.exp1a"]
    freeze.thaw_stale(tmp_path, "full")
    frozen = _frozen(tmp_path, "plots-only")
    assert freeze.thaw_stale(tmp_path, "full") == [] and frozen.exists()
    real, real_state = cache.fingerprint, cache.source_state
    monkeypatch.setattr(cache, "fingerprint",
                        lambda module: "edited" if module == "nnlab.plots.exp1a" else real(module))
    monkeypatch.setattr(cache, "source_state",
                        lambda modules: "edited" if "nnlab.plots.exp1a" in modules else real_state(modules))
    assert freeze.thaw_stale(tmp_path, "full") == ["chapters/plots-only"]
    assert not frozen.exists()


@pytest.mark.parametrize("record", ["", "{", "[]", "null"])
def test_an_empty_or_damaged_record_thaws_every_frozen_chapter(toy_experiment, tmp_path, record):  # noqa: F811
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "uses-toy.qmd").write_text('```{python}\nres = nnlab.load("toy")\n```\n')
    frozen = _frozen(tmp_path, "uses-toy")
    (tmp_path / "_freeze" / freeze.RECORD).write_text(record)
    assert freeze.thaw_stale(tmp_path, "full") == ["chapters/uses-toy"] and not frozen.exists()
    assert set(json.loads((tmp_path / "_freeze" / freeze.RECORD).read_text())) == {"chapters/uses-toy"}


def test_the_record_is_replaced_atomically(toy_experiment, tmp_path, monkeypatch):  # noqa: F811
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "uses-toy.qmd").write_text('```{python}\nres = nnlab.load("toy")\n```\n')
    freeze.thaw_stale(tmp_path, "full")
    record = tmp_path / "_freeze" / freeze.RECORD
    before = record.read_text()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    edit_code(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        freeze.thaw_stale(tmp_path, "full")
    assert record.read_text() == before and [p.name for p in record.parent.iterdir()] == [freeze.RECORD]


def test_outside_the_project_the_hook_does_nothing(tmp_path):
    env = dict(os.environ, NNLAB_CACHE=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-m", "nnlab.freeze"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "not the book's root" in out.stderr
    assert list(tmp_path.iterdir()) == []
