"""The report's blocks rendered to Markdown (figures linked as PNG files beside it) and to
one self-contained HTML page (figures embedded as base64), so the same content can be read
in a repository, in a browser, in a notebook, or mailed as a single file."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from markdown_it import MarkdownIt

if TYPE_CHECKING:
    from analysis._report import Report


@dataclass
class Block:
    """One piece of the report: a heading, a paragraph (Markdown), a table or a figure."""

    kind: str  # "h1" | "h2" | "h3" | "text" | "table" | "figure"
    content: Any
    name: str = ""  # figure file stem
    # Markdown a person wrote (--intro): rendered as written. Everything else is made
    # from the results, whose names (dataset ids, file and directory names, error
    # messages) are user text, and is rendered inert (:func:`inert`).
    written: bool = False


# What would make user text act in a Markdown viewer: the start of an HTML tag (a viewer
# that passes HTML through would run <script> or load <img>), and link or image syntax
# (![t](http://…) fetches a URL the text's author chose).
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_LINK = re.compile(r"\]\(")


def inert(text: str) -> str:
    """``text`` with HTML tag starts written as ``&lt;`` and link/image syntax broken
    (``]\\(``), so it reads the same and does nothing; the report's own Markdown (bold,
    code, p < 0.05) is untouched."""
    return _LINK.sub("]\\(", _TAG_START.sub("&lt;", text))


# CommonMark with pipe tables, as GitHub reads report.md. Raw HTML is off: an intro is
# written by a person and must not put markup or scripts into the page.
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")

# How the report's formatted values start (analysis._format): 0.79, +0.01, −0.02, <0.001,
# ∞, [0.1, 0.2], 349 (worse), 1.00×. A column of these is numbers, though stored as text.
_NUMBER = re.compile(r"[<>≤≥]?\[?[+\-−]?(?:\d|\.\d|∞)")
_MISSING = ("", "—")

WRAPPER = "steadytune-report"  # the class every style of the report is scoped to

_PAGE_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1300px;
padding:0 1em;color:#222;line-height:1.45}
"""

_REPORT_CSS = f"""
.{WRAPPER} table{{border-collapse:collapse;margin:.8em 0;font-size:.85em}}
.{WRAPPER} th,.{WRAPPER} td{{border:1px solid #ccc;padding:.25em .55em;text-align:left}}
.{WRAPPER} th{{background:#f3f3f3}}
.{WRAPPER} .dataframe th,.{WRAPPER} .dataframe td{{text-align:right}}
.{WRAPPER} img{{max-width:100%;border:1px solid #eee;margin:.5em 0}}
.{WRAPPER} code{{background:#f5f5f5;padding:0 .2em}}
.{WRAPPER} pre{{background:#f5f5f5;padding:.5em;overflow-x:auto}}
.{WRAPPER} blockquote{{margin-left:0;padding-left:1em;border-left:3px solid #ccc;color:#555}}
"""


def _md_cell(v: Any) -> str:
    return inert(str(v)).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame) -> str:
    """A pipe table; ``|`` and newlines in a cell are escaped so the row stays one row."""
    if df.empty:
        return "_(empty)_"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in df.itertuples(False)]
    return "\n".join(lines)


def render_markdown(report: Report, figure_dir: str = "figures") -> str:
    """The report as Markdown, its figures linked as ``<figure_dir>/<name>.png``."""
    parts = []
    for b in report.blocks:
        text = b.content if b.written or not isinstance(b.content, str) else inert(b.content)
        if b.kind in ("h1", "h2", "h3"):
            parts.append("#" * int(b.kind[1]) + " " + text)
        elif b.kind == "text":
            parts.append(text)
        elif b.kind == "table":
            parts.append(markdown_table(b.content))
        elif b.kind == "figure":
            parts.append(f"![{b.name}]({figure_dir}/{b.name}.png)")
    return "\n\n".join(parts) + "\n"


def _is_numeric(col: pd.Series) -> bool:
    """Whether a column holds numbers: a numeric dtype, or text whose every value reads as
    one (the report's tables hold formatted strings such as ``0.7900 ± 0.0573 (n=5)``). A
    column with no value at all stays with the numbers, as it does where it has some."""
    if pd.api.types.is_bool_dtype(col):
        return False
    if pd.api.types.is_numeric_dtype(col):
        return True
    cells = col.dropna().astype(str).str.strip()
    return bool(cells[~cells.isin(_MISSING)].str.match(_NUMBER).all())


def text_columns(df: pd.DataFrame) -> list[int]:
    """The 1-based positions of the columns to align left (CSS ``nth-child`` counts so)."""
    return [i + 1 for i in range(df.shape[1]) if not _is_numeric(df.iloc[:, i])]


def _table_html(df: pd.DataFrame) -> str:
    """A DataFrame as an HTML table whose class ``left-<n>`` marks each text column; the
    cells stay plain ``<td>``, so the alignment lives in one stylesheet."""
    classes = [f"left-{i}" for i in text_columns(df)]
    return df.to_html(index=False, border=0, na_rep="—", classes=classes)


def _alignment_css(tables: Iterable[pd.DataFrame]) -> str:
    """One rule per text-column position the tables use: numbers stay right-aligned, text
    reads from the left."""
    positions = sorted({i for df in tables for i in text_columns(df)})
    return "".join(
        f".{WRAPPER} .left-{i} td:nth-child({i}),.{WRAPPER} .left-{i} th:nth-child({i})"
        "{text-align:left}\n"
        for i in positions
    )


def _block_html(b: Block, pngs: dict[str, bytes]) -> str:
    """One block as HTML: headings and text as the Markdown they are in report.md."""
    text = b.content if b.written or not isinstance(b.content, str) else inert(b.content)
    if b.kind in ("h1", "h2", "h3"):
        return f"<{b.kind}>{MARKDOWN.renderInline(text)}</{b.kind}>"
    if b.kind == "text":
        return MARKDOWN.render(text)
    if b.kind == "table":
        return _table_html(b.content)
    if b.kind == "figure":
        data = base64.b64encode(pngs[b.name]).decode("ascii")
        return f'<img alt="{html.escape(b.name)}" src="data:image/png;base64,{data}">'
    return ""  # another kind is skipped, as render_markdown skips it


def render_body(report: Report, pngs: dict[str, bytes]) -> str:
    """The report as an HTML fragment, its styles scoped to it: the page's body, and what a
    notebook shows (``Report._repr_html_``) without restyling the notebook around it."""
    tables = [b.content for b in report.blocks if b.kind == "table"]
    css = _REPORT_CSS + _alignment_css(tables)
    blocks = "\n".join(_block_html(b, pngs) for b in report.blocks)
    return f'<style>{css}</style>\n<div class="{WRAPPER}">\n{blocks}\n</div>'


# The page loads nothing: its figures are inline data, its styles inline. Whatever a
# name in it says, a browser fetches no URL and runs no script.
_CSP = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "img-src data:; style-src 'unsafe-inline'\">"
)


def render_html(report: Report, pngs: dict[str, bytes]) -> str:
    """The report as one HTML page; ``pngs`` holds each figure block's PNG by name."""
    title = next((b.content for b in report.blocks if b.kind == "h1"), "steadytune report")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{_CSP}'
        f"<title>{html.escape(title)}</title><style>{_PAGE_CSS}</style></head><body>\n"
        + render_body(report, pngs)
        + "\n</body></html>\n"
    )
