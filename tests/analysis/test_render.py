"""The report renderers."""

from __future__ import annotations

import pandas as pd

from medssl.analysis.render import markdown_table


def test_markdown_table_escapes_pipes() -> None:
    text = markdown_table(pd.DataFrame({"a": ["x|y"], "b": [1]}))
    assert text.splitlines() == ["| a | b |", "| --- | --- |", "| x\\|y | 1 |"]
