"""The code fingerprint ignores comments, docstrings and formatting, and follows nnlab imports."""
from __future__ import annotations

import textwrap
import types
from dataclasses import dataclass

import pytest

from nnlab import cache, experiments
from nnlab import fingerprint as fp
from nnlab.config import param


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A throwaway ``nnlab`` tree: experiments/toy.py imports helper.py, which imports deep.py."""
    pkg = tmp_path / "nnlab"
    (pkg / "experiments").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "experiments" / "__init__.py").write_text("")
    (pkg / "experiments" / "toy.py").write_text(textwrap.dedent('''
        """Toy experiment."""
        from nnlab import helper
        from nnlab.config import nothing_here  # not a module: ignored

        def run(config):
            return helper.double(config)
    '''))
    (pkg / "helper.py").write_text("from . import deep\n\ndef double(x):\n    return deep.k * x\n")
    (pkg / "deep.py").write_text("k = 2\n")
    monkeypatch.setattr(fp, "PACKAGE_DIR", pkg)
    return pkg


def test_follows_imports_transitively(fake_package):
    assert fp.reachable_modules("nnlab.experiments.toy") == [
        "nnlab.deep", "nnlab.experiments.toy", "nnlab.helper"]


def test_comment_docstring_and_formatting_edits_keep_the_fingerprint(fake_package):
    before = fp.fingerprint("nnlab.experiments.toy")
    toy = fake_package / "experiments" / "toy.py"
    toy.write_text(toy.read_text().replace('"""Toy experiment."""', '"""Another docstring."""')
                   .replace("return helper.double(config)", "return helper.double( config )  # why"))
    (fake_package / "deep.py").write_text("# a comment\nk  =  2\n")
    assert fp.fingerprint("nnlab.experiments.toy") == before


def test_code_edit_in_a_transitively_imported_module_changes_it(fake_package):
    before = fp.fingerprint("nnlab.experiments.toy")
    (fake_package / "deep.py").write_text("k = 3\n")
    assert fp.fingerprint("nnlab.experiments.toy") != before


def test_code_edit_in_an_unrelated_module_keeps_it(fake_package):
    before = fp.fingerprint("nnlab.experiments.toy")
    (fake_package / "unrelated.py").write_text("x = 1\n")
    assert fp.fingerprint("nnlab.experiments.toy") == before


def test_library_versions_enter_the_fingerprint(fake_package, monkeypatch):
    before = fp.fingerprint("nnlab.experiments.toy")
    monkeypatch.setattr(fp, "versions", lambda: {"torch": "9.9", "numpy": "2.4"})
    assert fp.fingerprint("nnlab.experiments.toy") != before


@dataclass(frozen=True)
class MemoConfig:
    epochs: int = param(3, ge=1)


@pytest.fixture
def memo_experiment(fake_package, tmp_path, monkeypatch):
    """Experiment 'toy' = the fake package's experiments/toy.py; records each import of it."""
    imports = []
    module = types.SimpleNamespace(__name__="nnlab.experiments.toy", CHAPTER="chapters/toy.qmd",
                                   PROFILES={"full": MemoConfig(), "smoke": MemoConfig(epochs=1)})
    monkeypatch.setattr(experiments, "get", lambda name: imports.append(name) or module)
    monkeypatch.setattr(experiments, "available", lambda: ("toy",))
    monkeypatch.setenv("NNLAB_CACHE", str(tmp_path / "cache"))
    return imports


def test_the_key_memo_skips_the_import_and_never_gives_a_stale_key(fake_package, memo_experiment):
    first = cache.resolve("toy", "full")
    assert memo_experiment == ["toy"] and first.key == cache.plan("toy", "full").key
    del memo_experiment[:]
    again = cache.resolve("toy", "full")
    assert again.key == first.key and again.config is None and memo_experiment == []   # no import
    deep = fake_package / "deep.py"
    deep.write_text("# a comment\nk  =  2\n")                      # comment and spacing: same key
    assert cache.resolve("toy", "full").key == first.key
    deep.write_text("k = 3\n")                                     # code: a new key, the right one
    edited = cache.resolve("toy", "full")
    assert edited.key != first.key and edited.key == cache.plan("toy", "full").key
    (fake_package / "helper.py").write_text("from . import deep\n\ndef double(x):\n    return 3 * x\n")
    assert cache.resolve("toy", "full").key not in (first.key, edited.key)
    assert cache.resolve("toy", "smoke").key == cache.plan("toy", "smoke").key


def test_a_new_file_in_the_package_or_a_damaged_memo_means_recomputing(fake_package, memo_experiment):
    cache.resolve("toy", "full")
    (fake_package / "brand_new.py").write_text("x = 1\n")        # may change what an import names
    del memo_experiment[:]
    cache.resolve("toy", "full")
    assert memo_experiment == ["toy"]
    (cache.base_dir() / cache.MEMO).write_text("[1, 2")
    del memo_experiment[:]
    assert cache.resolve("toy", "full").key == cache.plan("toy", "full").key and memo_experiment
