"""The HTML report in a real headless Chromium: what the page shows equals what the tables hold."""
from __future__ import annotations

import os
import struct
import subprocess
import zlib
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import Fleet, run_report
from expected_usage import expected
from test_report_on_openwebui_schema import FIRST, LAST, PERIOD

from realservices import require_binary

pytestmark = pytest.mark.openwebui

BAR_RGB = (0x3B, 0x6F, 0xD8)  # svg rect.bar in the report's stylesheet


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    binary = require_binary("chromium", "apt-get install chromium (bash .ci/run)")
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run",
                           f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=True)


class _Page(HTMLParser):
    """Visible text of every element carrying data-metric, per section (data-app) and model row."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str, str], str] = {}
        self.bars: dict[str, list[tuple[str, int, float]]] = defaultdict(list)
        self._app = self._model = ""
        self._open: tuple[str, str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self._app = a["data-app"] or ""
        if tag == "tr":
            self._model = a.get("data-model") or a.get("data-user") or ""
        if tag == "rect" and a.get("class") == "bar":
            self.bars[self._app].append((a["data-date"] or "", int(a["data-value"] or 0), float(a["height"] or 0)))
        if "data-metric" in a:
            self._open = (self._app, a["data-metric"] or "", self._model if tag == "td" else "")
            self.values[self._open] = ""

    def handle_data(self, data: str) -> None:
        if self._open:
            self.values[self._open] += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "div"):
            self._open = None


def _number(text: str) -> int:
    return int(text.strip().replace(",", ""))


def _png_pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and unfiltered rows of an 8-bit RGB(A), non-interlaced PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, up_left = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + left) & 255
            elif f == 2:
                line[i] = (line[i] + up) & 255
            elif f == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif f == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 255
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


@pytest.fixture(scope="module")
def page(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    result = run_report(fleet, *PERIOD, "--format", "html", "--top", "5", "-o", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_numbers_on_the_rendered_page_equal_the_tables(fleet: Fleet, page: Path, tmp_path: Path) -> None:
    dom = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile").stdout
    parsed = _Page()
    parsed.feed(dom)
    wants = {app: expected(fleet.data[app], FIRST, LAST, top=5) for app in fleet.data}
    wants["all"] = {"users": sum(w["users"] for w in wants.values())}
    for app, want in wants.items():
        assert _number(parsed.values[app, "users", ""]) == want["users"]
        if app == "all":
            continue
        for key in ("active_users", "chats"):
            assert _number(parsed.values[app, key, ""]) == want[key]
        for role in ("user", "assistant"):
            assert _number(parsed.values[app, f"messages.{role}", ""]) == want["messages"][role]
        for model, n in want["messages_by_model"].items():
            assert _number(parsed.values[app, "messages_by_model", model]) == n
            assert _number(parsed.values[app, "tokens_by_model.input", model]) == want["tokens_by_model"][model]["input"]
        for user in want["top_users"]:
            assert _number(parsed.values[app, "top_users.messages", user["user_id"]]) == user["messages"]
        bars = parsed.bars[app]
        assert [(d, v) for d, v, _ in bars] == list(want["daily"].items())
        top, tallest = max(v for _, v, _ in bars), max(h for _, _, h in bars)
        assert tallest > 100 and all(h == pytest.approx(tallest * v / top, abs=0.01) for _, v, h in bars)


def test_the_charts_are_drawn_on_a_phone_sized_screen(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    chromium(f"--screenshot={shot}", "--window-size=412,1400", "--hide-scrollbars", page.as_uri(),
             profile=tmp_path / "profile")
    if os.environ.get("ANALYTICS_SCREENSHOT"):  # to look at it: ANALYTICS_SCREENSHOT=/tmp/report.png
        Path(os.environ["ANALYTICS_SCREENSHOT"]).write_bytes(shot.read_bytes())
    width, bpp, rows = _png_pixels(shot.read_bytes())
    assert width == 412
    bar_rows = [y for y, row in enumerate(rows)
                if any(tuple(row[x:x + 3]) == BAR_RGB for x in range(0, len(row), bpp))]
    # The first app's chart: bars fill many screen rows, inside the page's width.
    assert len(bar_rows) > 40


def test_the_page_needs_no_other_host(page: Path) -> None:
    html = page.read_text()
    assert "http://" not in html and "https://" not in html and "src=" not in html and "<script" not in html
    assert "default-src 'none'" in html  # and the browser would refuse any request anyway
