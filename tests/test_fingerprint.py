"""The code fingerprint ignores comments, docstrings and formatting, and follows nnlab imports."""
from __future__ import annotations

import textwrap

import pytest

from nnlab import fingerprint as fp


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
