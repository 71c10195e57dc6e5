"""``report.html`` as a person sees it: opened in headless Chromium (Debian's ``chromium``,
installed by ``make test`` where it can), it renders a page that is not blank, every
figure loads, and no Markdown shows as raw text."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from test_analysis_fakerun import make_run

import analysis

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (make test installs it)")

# Run in the page once it has loaded: what the browser made of the images and the text.
_PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const text = document.body.innerText;
  document.body.setAttribute("data-probe", JSON.stringify({
    images: images.length,
    loaded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    raw: ["**", "](", "```", "| --- |"].filter(t => text.includes(t)),
    text: text.length,
  }));
});
</script>"""

_INTRO = """# Findings

SDA is **steadier** here; see [the paper](https://arxiv.org/abs/2002.10345).

1. first
2. second

> a quote, `code`

| config | Δ |
| --- | ---: |
| sda | +0.01 |
"""


def _chromium(*args: str) -> str:
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
         *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _probe(tmp_path: Path, page: str) -> dict:
    """What Chromium made of ``page``, read by the probe script. The page's own
    Content-Security-Policy forbids every script, the probe too: the probed copy leaves
    that one line out (the page is otherwise as written)."""
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", _PROBE + "</body>"))
    found = re.search(r'data-probe="([^"]*)"', _chromium("--dump-dom", probed.as_uri()))
    assert found, "the page did not finish loading"
    return json.loads(found.group(1).replace("&quot;", '"'))


def test_report_renders_in_chromium(tmp_path):
    run = make_run(tmp_path, save_models=False)
    out = analysis.write_report(run, tmp_path / "out", intro=_INTRO).out_dir
    probe = _probe(tmp_path, (out / "report.html").read_text())
    assert probe["images"] >= 3 and probe["loaded"] == probe["images"]
    assert probe["raw"] == [] and probe["text"] > 2000

    shot = tmp_path / "shot.png"
    _chromium("--window-size=1300,2000", f"--screenshot={shot}", (out / "report.html").as_uri())
    pixels = matplotlib.image.imread(shot)[..., :3]
    ink = (pixels.mean(axis=2) < 0.9).mean()  # the share of pixels that are not near-white
    assert 0.02 < ink < 0.6 and float(np.std(pixels)) > 0.05


def test_the_probe_sees_raw_markdown(tmp_path):
    """The check above can fail: a page showing Markdown as text is caught."""
    page = tmp_path / "raw.html"
    page.write_text(f"<html><body><p>**bold** and [a](b)</p>{_PROBE}</body></html>")
    found = re.search(r'data-probe="([^"]*)"', _chromium("--dump-dom", page.as_uri()))
    assert found and json.loads(found.group(1).replace("&quot;", '"'))["raw"] == ["**", "]("]


def test_a_missing_image_is_seen(tmp_path):
    page = tmp_path / "img.html"
    page.write_text(f'<html><body><img src="{Path(tmp_path, "none.png").as_uri()}">{_PROBE}'
                    "</body></html>")  # fmt: skip
    found = re.search(r'data-probe="([^"]*)"', _chromium("--dump-dom", page.as_uri()))
    probe = json.loads(found.group(1).replace("&quot;", '"'))
    assert probe["images"] == 1 and probe["loaded"] == 0


def test_user_text_shows_as_text_in_chromium(tmp_path):
    """A dataset name holding an image and a script: the page shows both as text, loads
    no image beyond its own figures and runs nothing (issue 28)."""
    evil = "![t](http://127.0.0.1:9/t.png)<script>document.title='pwned'</script>"
    df = analysis.load(make_run(tmp_path, save_models=False))
    df["dataset"] = evil
    report = analysis.build_report(df, plots=False)
    from analysis._render import render_html

    page = render_html(report, {})
    probe = _probe(tmp_path, page)
    assert probe["images"] == 0  # no figures asked for, and the name made none
    dom = _chromium("--dump-dom", (tmp_path / "probed.html").as_uri())
    assert "pwned" not in dom.split("<body", 1)[0] and "&lt;script&gt;" in dom
