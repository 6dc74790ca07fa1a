"""A report as sections, and the two renderers that write it: Markdown (figures linked)
and self-contained HTML (tables as HTML, figures inlined as base64 PNG)."""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import markdown
import pandas as pd

from medssl.analysis.numbers import number as _number

log = logging.getLogger(__name__)


@dataclass
class Section:
    """A report section: an ordered list of blocks, each ``("p", str)``, ``("table", df)``
    or ``("fig", Path, caption)``."""

    title: str
    blocks: list[tuple] = field(default_factory=list)

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def markdown(self, text: str) -> None:
        """A block of Markdown written by a person (kept verbatim in ``report.md``)."""
        self.blocks.append(("md", text))

    def table(self, df: pd.DataFrame, caption: str = "") -> None:
        if caption:
            self.p(caption)
        self.blocks.append(("table", _display(df)))

    def figure(self, paths: Sequence[Path], caption: str, missing: str) -> None:
        png = [p for p in paths if p.suffix == ".png"]
        self.blocks.append(("fig", png[0], caption) if png else ("p", missing))


def _display(df: pd.DataFrame) -> pd.DataFrame:
    """Every cell as display text (floats to 3 significant digits, NaN as —)."""
    return df.astype(object).map(_number) if not df.empty else df


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (cells as given, ``|`` escaped)."""

    def row(cells: Sequence[object]) -> str:
        return "| " + " | ".join(_md(str(c)).replace("|", "\\|") for c in cells) + " |"

    lines = [row(df.columns), row(["---"] * len(df.columns))]
    lines += [row(r) for r in df.itertuples(index=False)]
    return "\n".join(lines)


def _md(text: str) -> str:
    """Escape Markdown emphasis markers (``n*`` would otherwise start italics)."""
    return text.replace("*", "\\*")


def to_markdown(title: str, banner: str, sections: list[Section], out: Path) -> str:
    parts = [f"# {title}", ""] + ([f"> **{banner}**", ""] if banner else [])
    for sec in sections:
        parts += [f"## {sec.title}", ""]
        for kind, *rest in sec.blocks:
            if kind == "p":
                parts += [_md(rest[0]), ""]
            elif kind == "md":
                parts += [rest[0].strip(), ""]
            elif kind == "table":
                parts += [markdown_table(rest[0]), ""]
            else:
                parts += [
                    f"![{_md(rest[1])}]({rest[0].relative_to(out).as_posix()})",
                    f"*{_md(rest[1])}*",
                    "",
                ]
    return "\n".join(parts)


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;"
    "color:#222}table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:3px 7px;text-align:left}th{background:#f2f2f2}"
    "img{max-width:100%}.banner{background:#b00020;color:#fff;font-weight:bold;"
    "padding:0.6em 1em;font-size:1.3em;letter-spacing:0.1em}figcaption{font-style:italic}"
)


def to_html(title: str, banner: str, sections: list[Section]) -> str:
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{CSS}</style></head><body>"
    ]
    if banner:
        parts.append(f"<div class='banner'>{html.escape(banner)}</div>")
    parts.append(f"<h1>{html.escape(title)}</h1>")
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        for kind, *rest in sec.blocks:
            if kind == "p":
                parts.append(f"<p>{html.escape(rest[0])}</p>")
            elif kind == "md":
                parts.append(markdown.markdown(rest[0], extensions=["tables"]))
            elif kind == "table":
                parts.append(rest[0].to_html(index=False, border=0, escape=True))
            else:
                data = base64.b64encode(rest[0].read_bytes()).decode("ascii")
                parts.append(
                    f"<figure><img alt='{html.escape(rest[1])}' "
                    f"src='data:image/png;base64,{data}'><figcaption>"
                    f"{html.escape(rest[1])}</figcaption></figure>"
                )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_pages(
    out: Path, title: str, banner: str, sections: list[Section], fig_paths: list[Path]
) -> list[Path]:
    md, page = out / "report.md", out / "report.html"
    md.write_text(to_markdown(title, banner, sections, out), encoding="utf-8")
    page.write_text(to_html(title, banner, sections), encoding="utf-8")
    log.info("report written to %s (%d figures)", out, len(fig_paths))
    return [md, page, *fig_paths]
