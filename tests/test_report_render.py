"""The report's HTML: Markdown (the report's own text and a person's intro) rendered as
CommonMark with tables, raw HTML escaped, table columns aligned by what they hold, and a
Report that shows itself in a notebook."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pandas as pd
from test_analysis_fakerun import make_run
from test_analysis_tables import table

import analysis
from analysis._render import Block, render_html, render_markdown, text_columns

INTRO = """\
# Findings

See [the paper](https://example.org/paper) first.

1. grid
2. race

- SE
  - K = all
- SDA

The grid has 3 * 4 * 5 cells.

> seeds matter

```bash
steadytune report runs/a <b>
```

| config | Δ |
| --- | ---: |
| sda | +0.01 |
"""

VOID = {"img", "br", "hr", "meta", "col", "input", "link"}


class Node:
    """An element of the parsed page: its tag, attributes, children and text."""

    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag, self.attrs, self.children, self.text = tag, attrs, [], ""

    def find_all(self, tag: str | None = None) -> list[Node]:
        """Every descendant with this tag (any tag: None), in document order."""
        found = []
        for child in self.children:
            found += ([child] if tag in (None, child.tag) else []) + child.find_all(tag)
        return found

    def all_text(self) -> str:
        return self.text + "".join(c.all_text() for c in self.children)


class TreeBuilder(HTMLParser):
    """The page as a tree of Nodes, so the tests check structure, not strings."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Node("root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].text += data


def parse(page: str) -> Node:
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.root


def without_pngs(page: str) -> str:
    return re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,…", page)


def intro_report(intro: str) -> analysis.Report:
    df = table({("vanilla", None, None, None): [0.7, 0.8, 0.9]})
    return analysis.build_report(df, plots=False, intro=intro)


def test_intro_markdown_renders_as_commonmark():
    page = parse(render_html(intro_report(INTRO), {}))
    assert "Findings" in [h.all_text() for h in page.find_all("h2")]
    (link,) = [a for a in page.find_all("a") if a.all_text() == "the paper"]
    assert link.attrs["href"] == "https://example.org/paper"
    (numbered,) = page.find_all("ol")
    assert [li.all_text() for li in numbered.find_all("li")] == ["grid", "race"]
    outer = next(ul for ul in page.find_all("ul") if "SE" in ul.all_text())
    first, second = [li for li in outer.children if li.tag == "li"]
    assert [li.all_text() for li in first.find_all("ul")[0].find_all("li")] == ["K = all"]
    assert second.all_text().strip() == "SDA"
    (cells,) = [p for p in page.find_all("p") if "3 * 4 * 5" in p.all_text()]
    assert not cells.find_all("em")
    (quote,) = page.find_all("blockquote")
    assert quote.all_text().strip() == "seeds matter"
    (code,) = page.find_all("pre")
    assert code.all_text() == "steadytune report runs/a <b>\n"
    intro_table = next(t for t in page.find_all("table") if "sda" in t.all_text())
    assert [th.all_text() for th in intro_table.find_all("th")] == ["config", "Δ"]
    assert [td.all_text() for td in intro_table.find_all("td")] == ["sda", "+0.01"]


def test_intro_stays_markdown_as_written_in_the_markdown_report():
    md = render_markdown(intro_report(INTRO))
    assert "\n## Findings\n" in md and "# Findings" not in md.replace("## Findings", "")
    body = INTRO.split("# Findings\n\n", 1)[1].rstrip("\n")
    assert body in md  # lists, quote, fence and pipe table untouched


def test_intro_headings_split_the_intro_but_not_a_fence():
    rep = intro_report("## Part\n\n```\n# not a heading\n\nstill code\n```\n\nText\n---\n")
    blocks = [(b.kind, b.content) for b in rep.blocks[2:5]]
    assert blocks == [
        ("h3", "Part"),
        ("text", "```\n# not a heading\n\nstill code\n```"),
        ("h3", "Text"),
    ]


def test_raw_html_in_an_intro_is_escaped():
    intro = '<script>alert(1)</script>\n\nA <b onclick="x()">bold</b> [y](javascript:alert(2))'
    page_text = render_html(intro_report(intro), {})
    page = parse(page_text)
    assert not page.find_all("script")
    assert not [node for node in page.find_all() if "onclick" in node.attrs]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page_text
    assert "A &lt;b onclick=&quot;x()&quot;&gt;bold&lt;/b&gt;" in page_text
    assert not [a for a in page.find_all("a") if "javascript" in (a.attrs.get("href") or "")]


def test_the_reports_own_text_is_markdown_too():
    page = parse(render_html(intro_report(""), {}))
    rule = next(p for p in page.find_all("p") if "Written to" in p.all_text())
    assert [s.all_text() for s in rule.find_all("strong")] == ["Rule."]
    assert "selection.yaml" in [c.all_text() for c in rule.find_all("code")]
    methods = next(ul for ul in page.find_all("ul") if "Seeds are the unit" in ul.all_text())
    assert len(methods.find_all("li")) == 3


def test_text_columns_are_left_aligned_and_numbers_right():
    df = pd.DataFrame(
        {
            "configuration": ["sda K=1", "vanilla"],
            "n": [5, 4],
            "mean ± std": ["0.7900 ± 0.0573 (n=5)", "—"],
            "Δ vs vanilla": ["sda K=1: +0.01", "(vanilla is selected)"],
            "p": ["<0.001", "0.500"],
            "Δ [CI]": ["−0.0100 [−0.07, 0.05] (n=5)", "+0.0200 [0.01, 0.03] (n=5)"],
            "done": [True, False],
            "missing seeds": ["—", None],
        }
    )
    assert text_columns(df) == [1, 4, 7]
    rep = analysis.Report()
    rep.add("table", df)
    page_text = render_html(rep, {})
    (tab,) = parse(page_text).find_all("table")
    assert set(tab.attrs["class"].split()) == {"dataframe", "left-1", "left-4", "left-7"}
    css = "".join(s.all_text() for s in parse(page_text).find_all("style"))
    for i in (1, 4, 7):
        assert f".left-{i} td:nth-child({i})" in css
    assert ".left-2 " not in css
    assert re.search(r"\.dataframe th,[^{]*\.dataframe td\{text-align:right\}", css)


def test_repr_html_is_the_page_body_with_its_figures(tmp_path, monkeypatch):
    run = make_run(tmp_path / "r", save_models=False)
    rep = analysis.write_report(run, tmp_path / "out")
    written = sorted((tmp_path / "out").rglob("*"))
    monkeypatch.chdir(tmp_path)
    shown = rep._repr_html_()
    body = (tmp_path / "out" / "report.html").read_text().split("<body>\n", 1)[1]
    # a figure's first drawing settles its constrained layout, so only the PNG bytes differ
    assert without_pngs(shown) == without_pngs(body.removesuffix("\n</body></html>\n"))
    assert sorted((tmp_path / "out").rglob("*")) == written and not (tmp_path / "figures").exists()
    images = parse(shown).find_all("img")
    figures = [b for b in rep.blocks if b.kind == "figure"]
    assert len(images) == len(figures) > 0
    for img in images:
        prefix, data = img.attrs["src"].split(",", 1)
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(data).startswith(b"\x89PNG")


def test_repr_html_draws_a_figure_added_by_hand():
    from matplotlib.figure import Figure

    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    rep = analysis.Report(blocks=[Block("h1", "Mine")])
    rep.add("figure", fig, name="mine")
    (img,) = parse(rep._repr_html_()).find_all("img")
    assert img.attrs["alt"] == "mine" and img.attrs["src"].startswith("data:image/png;base64,")
