"""The chapters' formatting helpers print numbers as a reader should see them, and nothing that
Quarto's markdown escaping or pandoc would turn into something else."""
from __future__ import annotations

import numpy as np
import pandas as pd

from nnlab import report


def test_num_is_plain_text_with_a_true_minus_and_whole_integers():
    assert report.num(np.int64(481)) == "481"               # never np.int64(481)
    assert report.num(np.float64(-0.26981), 4) == "−0.2698"  # U+2212, not a hyphen (a list marker)
    assert report.num(12500.0) == "12,500"                  # counts are never 1.25 × 10⁴, and are grouped
    assert report.num(-1250) == "−1,250" and report.num(999) == "999"
    assert report.num(26641.3, 5) == "26,641" and report.num(-1234.5, 6) == "−1,234.5"
    assert report.num(float("inf")) == "inf"
    assert report.seq([0, 1000], brackets="{}") == "{0, 1000}"   # no thousands comma inside a list
    assert report.num(-0.0) == "0"                          # no −0 sentinel
    assert report.num(26640.87) == "2.66 × 10⁴"
    assert report.num(float("nan")) == "–"


def test_num_keeps_trailing_zeros_on_request():
    assert report.num(0.9, 3) == "0.9"
    assert report.num(0.9, 3, zeros=True) == "0.900"
    assert report.num(99.96, 3, zeros=True) == "100"        # no trailing decimal point


def test_sci_seq_and_plural():
    assert report.sci(2.3e-16) == "2 × 10⁻¹⁶"
    assert report.sci(2.34e-16, 2) == "2.3 × 10⁻¹⁶"
    assert report.seq([2, 1, -3]) == "(2, 1, −3)"
    assert report.seq([3, 10, 100], brackets="{}") == "{3, 10, 100}"
    assert report.plural(1, "epoch") == "1 epoch" and report.plural(np.int64(3), "epoch") == "3 epochs"


def test_table_has_word_headers_no_index_row_and_one_precision_per_column():
    frame = pd.DataFrame({"run": ["a", "b"], "err": [0.9, 0.12345]}).set_index("run", drop=False)
    frame.index.name = "run"
    lines = report.table(frame, {"run": "run", "err": "test error"}).data.splitlines()
    assert lines[0] == "| run | test error |"
    assert lines[1] == "|:--|--:|"                           # text left, numbers right
    assert lines[2:] == ["| a | 0.900 |", "| b | 0.123 |"]   # no pandas index-name row


def test_source_is_a_python_listing_of_the_function():
    listing = report.source(report.num).data
    assert listing.startswith("```python\ndef num(") and listing.endswith("\n```")
