"""The report's blocks rendered to Markdown (figures linked as PNG files beside it) and to
one self-contained HTML page (figures embedded as base64), so the same content can be read
in a repository, in a browser, or mailed as a single file."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from analysis._report import Report


@dataclass
class Block:
    """One piece of the report: a heading, a paragraph (Markdown), a table or a figure."""

    kind: str  # "h1" | "h2" | "h3" | "text" | "table" | "figure"
    content: Any
    name: str = ""  # figure file stem


def _md_cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


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
        if b.kind in ("h1", "h2", "h3"):
            parts.append("#" * int(b.kind[1]) + " " + b.content)
        elif b.kind == "text":
            parts.append(b.content)
        elif b.kind == "table":
            parts.append(markdown_table(b.content))
        elif b.kind == "figure":
            parts.append(f"![{b.name}]({figure_dir}/{b.name}.png)")
    return "\n\n".join(parts) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1300px;
padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
code{background:#f5f5f5;padding:0 .2em}
"""


def _inline_md(text: str) -> str:
    """The little Markdown the report's paragraphs use: **bold**, *italic*, `code`, lists,
    fenced code blocks."""
    if text.startswith("```"):  # a fenced code block, as it is
        body = text.split("\n", 1)[1] if "\n" in text else ""
        return f"<pre><code>{html.escape(body.removesuffix('```').rstrip())}</code></pre>"
    out = []
    for para in text.split("\n- "):
        t = html.escape(para.strip().removeprefix("- "))
        t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
        t = re.sub(r"\*(.+?)\*", r"<i>\1</i>", t)
        t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
        out.append(t)
    if text.lstrip().startswith("- "):
        return "<ul>" + "".join(f"<li>{t}</li>" for t in out) + "</ul>"
    return "<p>" + "<br>".join(out) + "</p>"


def render_html(report: Report, pngs: dict[str, bytes]) -> str:
    """The report as one HTML page; ``pngs`` holds each figure block's PNG by name."""
    body = []
    for b in report.blocks:
        if b.kind in ("h1", "h2", "h3"):
            body.append(f"<{b.kind}>{html.escape(b.content)}</{b.kind}>")
        elif b.kind == "text":
            body.append(_inline_md(b.content))
        elif b.kind == "table":
            body.append(b.content.to_html(index=False, border=0, na_rep="—"))
        elif b.kind == "figure":
            data = base64.b64encode(pngs[b.name]).decode("ascii")
            body.append(f'<img alt="{html.escape(b.name)}" src="data:image/png;base64,{data}">')
    title = next((b.content for b in report.blocks if b.kind == "h1"), "steadytune report")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
