"""Browser tests for the HTML report: headless Debian chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

# make_context lives in test_report.py until the fixtures move to conftest.py.
from test_report import GROUPS, MALICIOUS_TEXTS, add_insights, make_context

from review_scorer.report.data import ScoreReport
from review_scorer.report.publish import publish_report

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def _unavailable(reason: str):
    # In CI a missing browser is a broken setup, not a reason to skip silently.
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright)")
    executable = shutil.which("chromium")
    if executable is None:
        _unavailable("no 'chromium' on PATH (apt-get install chromium); Playwright never downloads")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "reviews.html"
    long_text = "A slow start, then a lovely film about two sisters and a bakery. " * 12
    context = make_context(n_rows=137)
    context.table.rows[7]["text"] = long_text
    return publish_report(context, out)


@pytest.fixture(scope="module")
def insight_file(tmp_path_factory) -> Path:
    """A report with every new section, and attack strings in group names, dates and terms."""
    out = tmp_path_factory.mktemp("insights") / "reviews.html"
    context = make_context(n_rows=137)
    long_text = "A warm start, then a funny film about two sisters. " * 12
    context.table.rows[7]["text"] = long_text
    context.highlights["positive"][0]["text"] = long_text  # the same row dict as in the table
    return publish_report(add_insights(context), out)


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> Path:
    return publish_report(make_context(kind="train"), tmp_path_factory.mktemp("train") / "t.html")


class Watched:
    """A page plus everything it asked for or complained about."""

    def __init__(self, page):
        self.page = page
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("request", lambda req: self.requests.append(req.url))
        page.on(
            "console",
            lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))

        def on_dialog(dialog):
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)

    def assert_clean(self) -> None:
        assert self.console_errors == []
        assert self.page_errors == []
        assert self.dialogs == []
        outside = [u for u in self.requests if not u.startswith(("file://", "data:"))]
        assert outside == [], outside


def _open(browser, path: Path, *, viewport=LAPTOP, javascript: bool = True) -> Watched:
    context = browser.new_context(viewport=viewport, java_script_enabled=javascript)
    context.set_default_timeout(15_000)
    watched = Watched(context.new_page())
    watched.page.goto(path.as_uri())
    watched.page.wait_for_load_state("load")
    return watched


@pytest.fixture
def opened(browser, report_file):
    watched = _open(browser, report_file)
    watched.page.wait_for_selector("#rows-body tr[data-row]")
    yield watched
    watched.page.context.close()


def _screenshot(page, tmp_path: Path, name: str) -> None:
    """Save to the test's tmp dir and to test-artifacts/ (git-ignored) for a human to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    for folder in (tmp_path, ARTIFACTS):
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _visible_rows(page) -> list[dict]:
    return page.eval_on_selector_all(
        "#rows-body tr[data-row]",
        """trs => trs.map(tr => ({
            row: Number(tr.dataset.row),
            sentiment: tr.dataset.sentiment,
            status: tr.dataset.status,
            score: tr.dataset.score === undefined ? null : Number(tr.dataset.score),
            text: tr.querySelector('.review-text').textContent,
            id: tr.querySelector('.col-id') ? tr.querySelector('.col-id').textContent : null,
        }))""",
    )


def _match_count(page) -> int:
    return int(page.get_attribute("#match-count", "data-count"))


def _search(page, query: str) -> None:
    page.fill("#search", query)
    # The search is debounced: wait until the table has been redrawn for this query.
    page.wait_for_function(
        "q => document.getElementById('match-count').dataset.query === q",
        arg=query.strip().lower(),
    )


# ---------------------------------------------------------------- loading


def test_report_browser_loads_without_errors_or_network(opened, tmp_path):
    page = opened.page
    for section in ("summary", "model", "file-metrics", "highlights", "reviews"):
        assert page.is_visible(f"section#{section}"), section
    assert "reviews.csv" in page.title()
    _screenshot(page, tmp_path, "score-report-laptop")
    opened.assert_clean()
    assert opened.requests and opened.requests[0].startswith("file://")


def test_report_browser_plots_have_size(opened):
    page = opened.page
    boxes = page.eval_on_selector_all(
        "svg",
        "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })",
    )
    assert len(boxes) == 4  # curves, test confusion matrix, histogram, file confusion matrix
    # Without dates, groups, ratings or explanations the new sections stay out of the page.
    for name in ("drivers", "timeline", "groups", "ratings", "filter-group"):
        assert page.locator(f"#{name}").count() == 0, name
    assert all(w > 50 and h > 50 for w, h in boxes), boxes
    widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
    assert all(w > 0 for w in widths)


def test_report_browser_first_page_shows_rows_in_order(opened):
    page = opened.page
    rows = _visible_rows(page)
    assert [r["row"] for r in rows] == list(range(1, 51))
    assert _match_count(page) == 137
    assert page.inner_text("#page-info") == "page 1 of 3"


# ---------------------------------------------------------------- controls


def test_report_browser_search_narrows_rows(opened):
    page = opened.page
    _search(page, "WARM, FUNNY")
    rows = _visible_rows(page)
    assert rows and all("warm, funny" in r["text"].lower() for r in rows)
    assert _match_count(page) == len(rows) < 137
    _search(page, "r00042")  # ids are searched too
    assert [r["row"] for r in _visible_rows(page)] == [42]
    _search(page, "no review says this")
    assert _visible_rows(page) == []
    assert "No reviews match" in page.inner_text("#rows-body")
    _search(page, "")
    assert _match_count(page) == 137


def test_report_browser_sentiment_and_status_filters(opened):
    page = opened.page
    page.select_option("#page-size", "250")
    for value, expected in (("positive", "positive"), ("negative", "negative"), ("none", "none")):
        page.select_option("#filter-sentiment", value)
        rows = _visible_rows(page)
        assert rows, value
        assert {r["sentiment"] for r in rows} == {expected}
        assert _match_count(page) == len(rows)
    page.select_option("#filter-sentiment", "all")
    statuses = page.eval_on_selector_all("#filter-status option", "os => os.map(o => o.value)")
    assert statuses == ["all", "ok", "empty text", "no words"]
    for status in statuses[1:]:
        page.select_option("#filter-status", status)
        rows = _visible_rows(page)
        assert rows and {r["status"] for r in rows} == {status}
    page.select_option("#filter-status", "no words")
    page.select_option("#filter-sentiment", "positive")
    assert _visible_rows(page) == [] and _match_count(page) == 0


def test_report_browser_sort_by_score_is_monotone(opened):
    page = opened.page
    page.select_option("#page-size", "250")
    page.select_option("#sort", "score-desc")
    scores = [r["score"] for r in _visible_rows(page)]
    known = [s for s in scores if s is not None]
    assert known == sorted(known, reverse=True) and len(known) > 10
    assert scores[: len(known)] == known  # unscored rows last
    page.select_option("#sort", "score-asc")
    known = [r["score"] for r in _visible_rows(page) if r["score"] is not None]
    assert known == sorted(known)
    page.select_option("#sort", "row")
    assert [r["row"] for r in _visible_rows(page)] == list(range(1, 138))


def test_report_browser_paging(opened):
    page = opened.page
    page.select_option("#page-size", "25")
    assert page.inner_text("#page-info") == "page 1 of 6"
    assert page.is_disabled("#prev-page")
    page.click("#next-page")
    assert [r["row"] for r in _visible_rows(page)] == list(range(26, 51))
    assert page.inner_text("#page-info") == "page 2 of 6"
    for _ in range(4):
        page.click("#next-page")
    assert page.inner_text("#page-info") == "page 6 of 6"
    assert [r["row"] for r in _visible_rows(page)] == list(range(126, 138))
    assert page.is_disabled("#next-page")
    page.click("#prev-page")
    assert page.inner_text("#page-info") == "page 5 of 6"


def test_report_browser_more_toggle_expands_long_text(opened):
    page = opened.page
    row = page.locator('#rows-body tr[data-row="8"]')
    short = row.locator(".review-text").inner_text()
    assert short.endswith("…") and len(short) <= 302
    row.locator("button.more").click()
    full = row.locator(".review-text").inner_text()
    assert len(full) > 700 and not full.endswith("…")
    assert row.locator("button.more").inner_text() == "less"


# ---------------------------------------------------------------- safety and layout


def test_report_browser_malicious_reviews_do_not_execute(opened, tmp_path):
    page = opened.page
    page.select_option("#page-size", "250")
    # Expand every long text too, so each payload has been put into the DOM.
    for button in page.query_selector_all("button.more"):
        button.click()
    page.wait_for_timeout(200)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    texts = [r["text"] for r in _visible_rows(page)]
    for payload in MALICIOUS_TEXTS[:5]:
        assert payload in texts, payload  # shown literally, as text
    assert page.locator("#highlights img, #reviews img, #rows-body script").count() == 0
    _search(page, "__pwned")
    _screenshot(page, tmp_path, "score-report-malicious")
    opened.assert_clean()


def test_report_browser_phone_width_has_no_horizontal_overflow(browser, report_file, tmp_path):
    watched = _open(browser, report_file, viewport=PHONE)
    page = watched.page
    try:
        page.wait_for_selector("#rows-body tr[data-row]")
        overflow = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert overflow[0] <= overflow[1], overflow
        wide = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter(e => !e.closest('.table-scroll'))
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                .map(e => e.tagName + '#' + e.id + '.' + e.className)"""
        )
        assert wide == []
        scroller = page.evaluate(
            "() => { const s = document.querySelector('.table-scroll');"
            " return [s.scrollWidth, s.clientWidth]; }"
        )
        assert scroller[0] > scroller[1]  # the table scrolls inside its own box
        _screenshot(page, tmp_path, "score-report-phone")
        watched.assert_clean()
    finally:
        page.context.close()


def test_report_browser_without_javascript_shows_summary_and_plots(browser, report_file):
    watched = _open(browser, report_file, javascript=False)
    page = watched.page
    try:
        assert page.is_visible("section#summary") and page.is_visible("section#model")
        assert page.locator("svg.plot").count() == 4
        assert page.is_hidden("#controls")
        assert "needs JavaScript" in page.inner_text("section#reviews")
        assert "Positive" in page.inner_text("section#summary")
        watched.assert_clean()
    finally:
        page.context.close()


def test_report_browser_training_report(browser, train_file, tmp_path):
    watched = _open(browser, train_file)
    page = watched.page
    try:
        ids = page.eval_on_selector_all("section", "ss => ss.map(s => s.id)")
        assert ids == ["summary", "model"]
        assert "imdb-lstm" in page.title()
        boxes = page.eval_on_selector_all(
            "svg.plot", "els => els.map(e => e.getBoundingClientRect().width)"
        )
        assert len(boxes) == 2 and min(boxes) > 50
        _screenshot(page, tmp_path, "train-report-laptop")
        watched.assert_clean()
    finally:
        page.context.close()


# ---------------------------------------------------------------- why, when and where (issue 12)


@pytest.fixture
def insights_page(browser, insight_file):
    watched = _open(browser, insight_file)
    watched.page.wait_for_selector("#rows-body tr[data-row]")
    yield watched
    watched.page.context.close()


def _box(page, selector: str) -> list[float]:
    return page.eval_on_selector(
        selector, "e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; }"
    )


def test_report_browser_new_sections_are_present_and_sized(insights_page, tmp_path):
    page = insights_page.page
    ids = page.eval_on_selector_all("section", "ss => ss.map(s => s.id)")
    assert ids[:5] == ["summary", "drivers", "timeline", "groups", "ratings"] and ids[-1] == "model"
    for selector in (
        "#drivers",
        "#drivers-positive button.term",
        "#timeline svg.plot-timeline",
        "#timeline-table",
        "#groups svg.plot-groups",
        "#groups-table",
        "#ratings svg.plot-ratings",
        "#ratings-table",
        "#disagree-high-rating-negative",
        "#filter-group",
    ):
        width, height = _box(page, selector)
        assert width > 50 and height > 20, (selector, width, height)
    assert page.locator("#rows-body mark.hl").count() > 10
    _screenshot(page, tmp_path, "insights-report-laptop")
    insights_page.assert_clean()


def _rows_with_marks(page) -> list[dict]:
    return page.eval_on_selector_all(
        "#rows-body tr[data-row]",
        """trs => trs.map(tr => ({
            row: Number(tr.dataset.row),
            group: tr.dataset.group,
            marks: [...tr.querySelectorAll('mark.hl')].map(m => m.textContent.toLowerCase()),
        }))""",
    )


def test_report_browser_driver_click_filters_and_chip_clears(insights_page):
    page = insights_page.page
    page.select_option("#page-size", "250")
    total = _match_count(page)
    page.click('#drivers button.term[data-term="warm"]')
    assert page.is_visible("#term-filter") and "warm" in page.inner_text("#term-filter")
    assert page.get_attribute('button.term[data-term="warm"]', "aria-pressed") == "true"
    rows = _rows_with_marks(page)
    assert rows and len(rows) == _match_count(page) < total
    assert all("warm" in r["marks"] for r in rows)
    # A phrase matches adjacent highlighted words ("warm, funny").
    page.click('#drivers button.term[data-term="warm funny"]')
    phrase_rows = _rows_with_marks(page)
    assert phrase_rows and len(phrase_rows) <= len(rows)
    assert all({"warm", "funny"} <= set(r["marks"]) for r in phrase_rows)
    page.click("#term-filter-clear")
    assert page.is_hidden("#term-filter") and _match_count(page) == total
    # A term highlighted in no review leaves an empty, clearly labelled table.
    page.click('#drivers button.term[data-term="never get"]')
    assert _match_count(page) == 0 and "No reviews match" in page.inner_text("#rows-body")
    page.click('#drivers button.term[data-term="never get"]')  # a second click clears it
    assert _match_count(page) == total
    insights_page.assert_clean()


def test_report_browser_group_filter_and_group_links(insights_page):
    page = insights_page.page
    page.select_option("#page-size", "250")
    expected = {
        name: int(page.get_attribute(f'#groups-table tr[data-name="{name}"]', "data-reviews").split(".")[0])
        for name in ("Kettle", "(none)")
    }
    page.select_option("#filter-group", label="Kettle")
    rows = _rows_with_marks(page)
    assert rows and {r["group"] for r in rows} == {"Kettle"} and len(rows) == expected["Kettle"]
    shown = page.eval_on_selector_all("#rows-body td.col-group", "tds => tds.map(td => td.textContent)")
    assert shown == ["Kettle"] * len(rows)  # the group is a column of the table too
    page.select_option("#filter-group", "all")
    page.click('#groups-table button.group-link[data-group="(none)"]')
    rows = _rows_with_marks(page)
    assert {r["group"] for r in rows} == {"(none)"} and len(rows) == expected["(none)"]
    assert page.eval_on_selector("#filter-group", "s => s.selectedOptions[0].textContent") == "(none)"
    insights_page.assert_clean()


def test_report_browser_groups_table_sorts(insights_page):
    page = insights_page.page

    def column(key: str) -> list:
        return page.eval_on_selector_all(
            "#groups-table tbody tr", f"trs => trs.map(tr => tr.dataset['{key}'])"
        )

    page.click('#groups-table th[data-key="share"] button')
    shares = [float(v) for v in column("share")]
    assert shares == sorted(shares, reverse=True)
    assert page.get_attribute('#groups-table th[data-key="share"]', "aria-sort") == "descending"
    page.click('#groups-table th[data-key="share"] button')
    assert [float(v) for v in column("share")] == sorted(shares)
    page.click('#groups-table th[data-key="name"] button')
    names = column("name")
    # Names sort the way people read them (localeCompare), not by code point.
    in_order = page.evaluate("ns => [...ns].sort((a, b) => a.localeCompare(b))", names)
    assert names == in_order and len(names) == len(GROUPS)
    assert page.get_attribute('#groups-table th[data-key="name"]', "aria-sort") == "ascending"
    insights_page.assert_clean()


def _contrast(fg: list[float], bg: list[float]) -> float:
    def luminance(rgb):
        channels = [c / 255 for c in rgb[:3]]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_report_browser_highlights_are_readable_and_say_their_side_without_colour(insights_page):
    page = insights_page.page
    styles = page.eval_on_selector_all(
        "mark.hl",
        """ms => ms.map(m => {
            const s = getComputedStyle(m);
            const nums = v => (v.match(/[\\d.]+/g) || []).map(Number);
            return {cls: m.className, fg: nums(s.color), bg: nums(s.backgroundColor),
                    line: s.textDecorationLine, style: s.textDecorationStyle, title: m.title};
        })""",
    )
    assert {s["cls"].split()[1] for s in styles} == {"pos", "neg"}
    for s in styles:
        r, g, b, a = (s["bg"] + [1])[:4]
        over_white = [a * c + (1 - a) * 255 for c in (r, g, b)]
        assert _contrast(s["fg"], over_white) >= 4.5, s  # WCAG AA for body text
        assert s["line"] == "underline"
        assert s["style"] == ("solid" if " pos " in f" {s['cls']} " else "wavy")
        assert s["title"].startswith("+" if " pos " in f" {s['cls']} " else "-")


def test_report_browser_long_highlighted_text_expands(insights_page):
    page = insights_page.page
    row = page.locator('#rows-body tr[data-row="8"]')
    assert row.locator(".review-text").inner_text().endswith("…")
    short_marks = row.locator("mark.hl").count()
    row.locator("button.more").click()
    assert row.locator("mark.hl").count() > short_marks
    assert not row.locator(".review-text").inner_text().endswith("…")


def test_report_browser_attack_strings_in_new_places_stay_text(insights_page, tmp_path):
    page = insights_page.page
    page.select_option("#page-size", "250")
    for button in page.query_selector_all("#rows-body button.more"):
        button.click()
    page.click('#drivers button.term[data-term="</script><script>window.__pwned=6</script>"]')
    page.click("#term-filter-clear")
    page.wait_for_timeout(200)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    injected = "main img, main b, main script:not(#rows-data), main [onerror], main [onload]"
    assert page.locator(injected).count() == 0
    options = page.eval_on_selector_all("#filter-group option", "os => os.map(o => o.textContent)")
    for name in GROUPS:
        assert (name or "(none)") in options
    assert GROUPS[2] in page.inner_text("#groups-table")
    assert "<svg onload=alert(5)>" in page.inner_text("#timeline")
    assert "<b>bold</b> term" in page.inner_text("#drivers")
    assert "{{ 7*7 }} $x$" in page.inner_text("#groups-table")
    _screenshot(page, tmp_path, "insights-report-attacks")
    insights_page.assert_clean()


def test_report_browser_insights_on_a_phone(browser, insight_file, tmp_path):
    watched = _open(browser, insight_file, viewport=PHONE)
    page = watched.page
    try:
        page.wait_for_selector("#rows-body tr[data-row]")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
        wide = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter(e => !e.closest('.table-scroll, .plot-scroll'))
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                .map(e => e.tagName + '#' + e.id + '.' + e.className)"""
        )
        assert wide == []
        assert _box(page, "#drivers button.term")[0] > 300
        for selector in ("#timeline svg", "#groups svg", "#ratings svg"):
            # Plots keep a readable width and scroll sideways inside their own box.
            assert _box(page, selector)[0] >= 560, selector
            assert _box(page, f"{selector.split()[0]} .plot-scroll")[0] <= PHONE["width"]
        _screenshot(page, tmp_path, "insights-report-phone")
        watched.assert_clean()
    finally:
        page.context.close()


def test_report_browser_insights_in_print(browser, insight_file, tmp_path):
    watched = _open(browser, insight_file)
    page = watched.page
    try:
        page.wait_for_selector("#rows-body tr[data-row]")
        page.emulate_media(media="print")
        for hidden in ("#controls", "#pager", ".toc"):
            assert page.is_hidden(hidden), hidden
        # Scroll boxes open up: the whole timeline and groups tables are on paper.
        for box in ("#timeline .table-scroll", "#groups .table-scroll"):
            scroll, client = page.eval_on_selector(box, "e => [e.scrollHeight, e.clientHeight]")
            assert scroll <= client + 1, box
        # Long highlights print whole, once: the full text instead of preview + details box.
        full = page.locator("#highlights .print-only").first
        assert full.is_visible() and full.bounding_box()["height"] > 10
        assert page.locator("#highlights details").first.is_hidden()
        assert page.locator("#highlights .has-full").first.is_hidden()
        _screenshot(page, tmp_path, "insights-report-print")
        watched.assert_clean()
    finally:
        page.context.close()


# ---------------------------------------------------------------- a real file with dates, groups, stars

SHOP = REPO_ROOT / "sample_data" / "shop_reviews.csv"


def _shop_row(chunk, i: int, info, spans: list) -> dict:
    ok = chunk.status[i] == "ok"
    score = float(chunk.scores[i]) if ok else None
    rating = float(chunk.ratings[i]) if chunk.ratings is not None else float("nan")
    return {
        "row": int(chunk.rows[i]),
        "id": str(chunk.frame[info.id_column].iloc[i]),
        "text": chunk.texts[i] or "",
        "sentiment": ("positive" if score >= 0.5 else "negative") if ok else "",
        "score": score,
        "status": str(chunk.status[i]),
        "label": {1: "positive", 0: "negative"}.get(int(chunk.labels[i])),
        "spans": spans,
        "group": str(chunk.frame[info.group_column].iloc[i]),
        "rating": rating if rating == rating else None,
    }


def shop_report_context(model_dir: Path) -> ScoreReport:
    """The shop sample through the real reader, scoring core, explainer and insights."""
    from review_scorer import SentimentModel
    from review_scorer.explain.attribution import Explainer
    from review_scorer.explain.drivers import DriverAccumulator, row_spans
    from review_scorer.io import open_reviews
    from review_scorer.report.insights import FileInsights
    from review_scorer.scoring.score import ScoreOptions, iter_scored_chunks

    model = SentimentModel.load(model_dir)
    review_file = open_reviews(SHOP, chunk_rows=25)  # several chunks: the sinks really stream
    info = review_file.info
    insights = FileInsights(
        info.date_column, info.group_column, info.rating_column, info.rating_scale, 0.5,
        id_column=info.id_column,
    )
    explainer, drivers, rows = Explainer(model), DriverAccumulator(), []
    from review_scorer.explain.drivers import terms_in_text

    try:
        for chunk in iter_scored_chunks(review_file, model, ScoreOptions(chunk_rows=25)):
            chunk.attributions = explainer.explain(chunk.texts)
            insights.update(chunk)
            drivers.update(chunk.attributions)
            rows += [
                _shop_row(chunk, i, info, row_spans(a)) for i, a in enumerate(chunk.attributions)
            ]
    finally:
        review_file.close()
    context = make_context(n_rows=1)  # model and page details from the test helpers
    scored = sorted((r for r in rows if r["score"] is not None), key=lambda r: r["score"])
    positive = sum(r["sentiment"] == "positive" for r in scored)
    summary = replace(
        context.summary,
        file=SHOP.name, path=str(SHOP), rows=len(rows), scored=len(scored),
        not_scored=len(rows) - len(scored), not_scored_reasons={}, positive=positive,
        negative=len(scored) - positive, positive_share=positive / len(scored),
        text_column=info.text_column, label_column=info.rating_column, notes=tuple(info.notes),
        rows_per_second=len(rows) / context.summary.seconds,
    )
    result = drivers.result(k=10)
    # The rows kept for the page are matched against the final driver list, as the scorer does.
    terms = [t["term"] for t in result["positive"] + result["negative"]]
    for row in rows:
        row["terms"] = terms_in_text(row["text"], terms)
    return replace(
        context, **insights.context(), summary=summary,
        title=f"{SHOP.name} — sentiment report",
        table=replace(context.table, rows=tuple(rows), total=len(rows)), file_metrics=None,
        drivers=result,
        highlights={
            "positive": [r for r in scored[::-1][:5] if r["sentiment"] == "positive"],
            "negative": [r for r in scored[:5] if r["sentiment"] == "negative"],
            "uncertain": sorted(scored, key=lambda r: abs(r["score"] - 0.5))[:5],
        },
    )


@pytest.fixture(scope="module")
def shop_report(tmp_path_factory, trained_model) -> tuple[Path, ScoreReport]:
    context = shop_report_context(trained_model.model_dir)
    return publish_report(context, tmp_path_factory.mktemp("shop") / "shop_reviews.html"), context


def test_report_browser_shop_file_with_dates_groups_and_stars(browser, shop_report, tmp_path):
    path, context = shop_report
    frame = pd.read_csv(SHOP, dtype=str, keep_default_na=False)
    watched = _open(browser, path)
    page = watched.page
    try:
        page.wait_for_selector("#rows-body tr[data-row]")
        ids = page.eval_on_selector_all("section", "ss => ss.map(s => s.id)")
        assert ids[:5] == ["summary", "drivers", "timeline", "groups", "ratings"]
        assert _match_count(page) == len(frame)  # every row, none dropped
        # Every product is a group; the unreadable dates are counted and named by row.
        names = page.eval_on_selector_all("#groups-table tbody tr", "trs => trs.map(t => t.dataset.name)")
        assert sorted(names) == sorted(frame["product"].unique())
        unreadable = pd.to_datetime(frame["date"], format="%Y-%m-%d", errors="coerce").isna() & (
            frame["date"] != ""
        )
        note = page.inner_text("#timeline-unreadable")
        assert note.startswith(f"{int(unreadable.sum())} dates could not be read")
        for row in (frame.index[unreadable] + 1).tolist():
            assert f"row {row}:" in note
        neutral = int((frame["stars"] == "3").sum())
        assert page.inner_text("#ratings-neutral") == f"{neutral} neutral"
        for svg in ("#timeline svg", "#groups svg", "#ratings svg"):
            width, height = _box(page, svg)
            assert width > 300 and height > 100, svg
        page.select_option("#filter-group", label="Nimbus Earbuds")
        assert _match_count(page) == int((frame["product"] == "Nimbus Earbuds").sum())
        page.select_option("#filter-group", "all")
        # A driver term filters to exactly the rows the scorer says hold it.
        button = page.locator("#drivers button.term").last
        index = int(button.get_attribute("data-index"))
        button.click()
        assert page.is_visible("#term-filter")
        assert _match_count(page) == sum(index in r["terms"] for r in context.table.rows) > 0
        _screenshot(page, tmp_path, "shop-report-laptop")
        watched.assert_clean()
    finally:
        page.context.close()


# ---------------------------------------------------------------- how the model was made (issue 10)


def _pretrained_meta() -> dict:
    """meta.json of a model fine-tuned from a pretrained language model, then distilled."""
    trace_loss = [6.5 - 2.4 * (1 - 0.96**i) for i in range(100)]
    encoder = {
        "name": "imdb-lm", "tokens": 2000, "epochs": 2, "device": "CPU", "train_seconds": 95.0,
        "corpus": {"source": "aclImdb archive", "reviews": 1500, "unlabeled_reviews": 1000,
                   "labeled_reviews": 500, "reviews_used": 1485, "heldout_reviews": 15,
                   "vocab_size": 800, "excluded": "the test split and the validation slice"},
        "history": {"loss": [4.8, 4.3], "heldout_loss": [5.0, 4.6],
                    "heldout_perplexity": [148.4, 99.5], "tokens_seen": [2000, 4000],
                    "trace_tokens": [40 * (i + 1) for i in range(100)], "trace_loss": trace_loss},
        "config": {"epochs": 2, "softmax": "sampled", "lstm_units": 64, "embedding_dim": 64},
        "fine_tuning": {"head_epochs": 1, "encoder_lr_multiplier": 0.5},
    }
    return {
        "data_source": "aclImdb archive", "sizes": {"train": 500, "validation": 60, "test": 600},
        "epochs_run": 4, "best_epoch": 4, "ensemble_size": 2, "pretrained_encoder": encoder,
        "distillation": {"teacher": "NB-weighted logistic regression", "unlabeled_reviews": 1000,
                         "targets": "soft"},
    }


@pytest.fixture(scope="module")
def provenance_file(tmp_path_factory) -> Path:
    from review_scorer.report.provenance import model_provenance

    context = make_context(n_rows=20)
    made = model_provenance(_pretrained_meta(), {"lstm_units": 64})
    context = replace(context, model=replace(context.model, provenance=made))
    return publish_report(context, tmp_path_factory.mktemp("provenance") / "reviews.html")


def test_report_browser_score_report_shows_how_the_model_was_made(browser, provenance_file, tmp_path):
    watched = _open(browser, provenance_file)
    page = watched.page
    try:
        assert page.is_visible("#provenance") and page.is_visible("nav.toc a[href='#provenance']")
        stages = page.eval_on_selector_all("#provenance li.stage", "ls => ls.map(l => l.id)")
        assert stages == ["stage-pretraining", "stage-distillation", "stage-fine-tuning"]
        for stage in stages:
            assert page.is_visible(f"#{stage}") and _box(page, f"#{stage}")[1] > 40, stage
        assert "1,485 reviews trained on" in page.inner_text("#stage-pretraining")
        lm, classifier = _box(page, "#lm-curve svg"), _box(page, "#classifier-curves svg")
        assert lm[0] > 250 and lm[1] > 150 and classifier[0] > 250, (lm, classifier)
        # On a laptop the language model's curve sits beside the classifier's, on its left.
        tops = page.eval_on_selector_all(
            "#lm-curve, #classifier-curves", "fs => fs.map(f => f.getBoundingClientRect().top)")
        lefts = page.eval_on_selector_all(
            "#lm-curve, #classifier-curves", "fs => fs.map(f => f.getBoundingClientRect().left)")
        assert abs(tops[0] - tops[1]) < 2 and lefts[0] < lefts[1]
        page.click("nav.toc a[href='#provenance']")
        page.wait_for_function("() => location.hash === '#provenance'")
        _screenshot(page, tmp_path, "provenance-laptop")
        watched.assert_clean()
    finally:
        page.context.close()
    phone = _open(browser, provenance_file, viewport=PHONE)
    try:
        phone.page.wait_for_selector("#rows-body tr[data-row]")
        wide = phone.page.evaluate(
            """() => [...document.querySelectorAll('#model *')]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                .map(e => e.tagName + '#' + e.id + '.' + e.className)"""
        )
        assert wide == []
        assert _box(phone.page, "#lm-curve svg")[0] > 250
        phone.assert_clean()
    finally:
        phone.page.context.close()


# ---------------------------------------------------------------- a report written by the CLI (issue 18)


@pytest.fixture(scope="module")
def cli_report(tmp_path_factory) -> tuple[Path, dict, Path]:
    """`python -m review_scorer score` on the shop sample with the shipped model, as a user runs it."""
    import json
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("cli") / "out"
    env = {k: v for k, v in os.environ.items() if k != "REVIEW_SCORER_MODEL_DIR"}
    # This checkout's package, whatever else is installed; the run's own folder as working
    # directory, so no models/ folder lying around is picked up instead of the shipped model.
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run(
        [sys.executable, "-m", "review_scorer", "score", str(SHOP), "--out-dir", str(out), "--json"],
        cwd=out.parent, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (summary,) = json.loads(done.stdout)["files"]
    return Path(summary["report"]), summary, Path(summary["predictions"])


def _unbroken_words(page, selector: str) -> list[str]:
    """Words in the elements matching selector that the layout split across two lines."""
    return page.evaluate(
        """sel => [...document.querySelectorAll(sel)].flatMap(el => {
            const broken = [];
            const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
            for (let node; (node = walker.nextNode());) {
                for (const m of node.data.matchAll(/[^\\s\\u2013\\-]+/g)) {
                    const r = document.createRange();
                    r.setStart(node, m.index);
                    r.setEnd(node, m.index + m[0].length);
                    const tops = new Set([...r.getClientRects()].map(b => Math.round(b.top)));
                    if (tops.size > 1) { broken.push(m[0]); }
                }
            }
            return broken;
        })""",
        selector,
    )


def test_report_browser_opens_the_report_the_cli_wrote(browser, cli_report, tmp_path):
    path, summary, predictions_path = cli_report
    frame = pd.read_csv(SHOP, dtype=str, keep_default_na=False)
    predictions = pd.read_csv(predictions_path, dtype=str, keep_default_na=False)
    watched = _open(browser, path)
    page = watched.page
    try:
        page.wait_for_selector("#rows-body tr[data-row]")
        # Summary figures: the run's own counts and this file's accuracy, the model's beside it.
        cards = dict(zip(page.locator("#summary-cards .card-label").all_inner_texts(),
                         page.locator("#summary-cards .card-value").all_inner_texts()))
        assert cards["Reviews"] == f"{len(frame):,}" and cards["Scored"] == f"{summary['scored']:,}"
        positive = int((predictions["sentiment"] == "positive").sum())
        assert positive == summary["positive"]
        shares = [float(cards[k].rstrip("%")) for k in ("Positive", "Negative")]
        assert sum(shares) == pytest.approx(100.0)
        assert shares[0] == pytest.approx(100 * positive / summary["scored"], abs=0.1)
        accuracy = page.inner_text("#headline-accuracy .card-value")
        assert accuracy == f"{summary['metrics']['accuracy']:.1%}"
        assert f"n = {summary['metrics']['n']:,}" in page.inner_text("#headline-accuracy")
        assert page.inner_text("#headline-model .card-label") == "Model's IMDB test accuracy"
        # Every input row is in the table, with the sentiment the predictions file gives it.
        assert _match_count(page) == len(frame) == len(predictions)
        page.select_option("#page-size", "250")
        rows = _visible_rows(page)
        assert len(rows) == len(frame)
        assert [r["sentiment"] for r in rows] == [s or "none" for s in predictions["sentiment"]]
        # Highlighted words: real words of the row's own text, only a few per review, and the
        # row's word list has every weighted word.
        marked = page.eval_on_selector_all(
            "#rows-body tr[data-row]",
            """trs => trs.map(tr => ({
                text: tr.querySelector('.review-text').textContent,
                marks: [...tr.querySelectorAll('.review-text mark.hl')].map(m => m.textContent),
                listed: tr.querySelectorAll('details.words li').length,
            }))""",
        )
        assert sum(len(r["marks"]) for r in marked) > 0
        for r in marked:
            assert all(m.strip() and m in r["text"] for m in r["marks"])
            assert len(r["marks"]) <= r["listed"]
        assert any(len(r["marks"]) < r["listed"] for r in marked)  # the weak ones are not marked
        assert page.locator("#highlights .highlight mark.hl").count() > 0
        _screenshot(page, tmp_path, "cli-report-laptop")
        watched.assert_clean()
    finally:
        page.context.close()


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_report_browser_names_and_words_never_break_inside_a_word(browser, cli_report, viewport):
    path, _, _ = cli_report
    watched = _open(browser, path, viewport=viewport)
    page = watched.page
    try:
        page.wait_for_selector("#rows-body tr[data-row]")
        page.select_option("#page-size", "250")
        names = page.eval_on_selector_all("#rows-body td.col-group", "tds => tds.map(t => t.textContent)")
        assert "Brewmaster Grinder" in names
        for selector in ("#groups-table tbody th", "#rows-body td.col-group",
                         "#rows-body td.col-text .review-text", "#highlights .review-text"):
            assert _unbroken_words(page, selector) == [], selector
        watched.assert_clean()
    finally:
        page.context.close()
