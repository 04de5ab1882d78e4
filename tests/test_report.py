"""Tests for report.py and plots.py: the HTML report is self-contained, safe and complete."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from review_scorer.errors import OutputError
from review_scorer.report import formatting, plots, rows_view, sections
from review_scorer.report import render as report
from review_scorer.report.data import (
    FileSummary,
    ModelSection,
    ReviewTable,
    ScoreReport,
    TrainReport,
)
from review_scorer.report.publish import publish_report
from review_scorer.report.render import DEFAULT_MAX_ROWS, build_report_html

# ---------------------------------------------------------------- fixtures / helpers

SAMPLE_TEXTS = [
    "A warm, funny film with a cast that clearly enjoyed every scene. I would watch it again.",
    "Two hours I will never get back. The plot wanders and the ending makes no sense at all.",
    "Beautiful photography, but the script is thin.<br /><br />Still, the lead is wonderful.",
    "Not great, not terrible. The second half drags, yet the music carries it along.",
    "An instant favourite: clever, tender and surprisingly tense in the last act.",
    "The dialogue felt like it was written by a committee that never met.",
]

MALICIOUS_TEXTS = [
    "<script>window.__pwned = 1; alert(1)</script>",
    "<img src=x onerror=\"window.__pwned = 2; alert(1)\">",
    "</script><script>window.__pwned = 3; alert(2)</script>",
    "</textarea><b>bold?</b> 'single' \"double\" & ampersand",
    "{{ 7*7 }} {% if true %}jinja{% endif %}",
    "line\u2028separator and\u2029paragraph",
    "<!-- comment opener <svg onload=alert(3)>",
]

STATUSES = ["ok", "ok", "ok", "empty text", "ok", "no words", "ok"]


def make_row(i: int, text: str, *, labeled: bool, status: str = "ok") -> dict:
    """One report row the way score.py builds it."""
    scored = status == "ok"
    score = round((i * 37 % 101) / 100, 4) if scored else None
    sentiment = ("positive" if score >= 0.5 else "negative") if scored else ""
    label = None
    if labeled:
        label = "positive" if (i % 3) else "negative"
    return {
        "row": i + 1,
        "id": f"r{i + 1:05d}",
        "text": text if scored else ("" if status == "empty text" else "!!! ???"),
        "sentiment": sentiment,
        "score": score,
        "status": status,
        "label": label,
    }


def make_metrics(n: int = 200, acc: float = 0.86) -> dict:
    tp = tn = round(n * acc / 2)
    fp = fn = (n - tp - tn) // 2
    return {
        "n": tp + tn + fp + fn,
        "accuracy": acc,
        "precision": 0.85,
        "recall": 0.87,
        "f1": 0.86,
        "roc_auc": 0.93,
        "loss": 0.34,
        "threshold": 0.5,
        "confusion": [[tn, fp], [fn, tp]],
    }


def make_model(*, epochs: int = 4, history: bool = True, tested: bool = True) -> ModelSection:
    return ModelSection(
        name="imdb-lstm",
        path="/models/imdb-lstm",
        trained_at="2025-11-20T18:04:11+01:00",
        data_source="aclImdb_v1.tar.gz",
        device="CPU",
        config={"vocab_size": 20000, "max_len": 400, "bidirectional": True, "l2": 1e-05},
        history={
            "loss": [0.62 - 0.1 * e for e in range(epochs)],
            "val_loss": [0.55 - 0.05 * e for e in range(epochs)],
            "accuracy": [0.68 + 0.05 * e for e in range(epochs)],
            "val_accuracy": [0.72 + 0.03 * e for e in range(epochs)],
        }
        if history
        else {},
        best_epoch=epochs if history else None,
        test_metrics=make_metrics() if tested else None,
        sizes={"train": 22500, "validation": 2500, "test": 25000},
        train_seconds=431.2,
    )


def make_summary(rows: list[dict], total: int, *, labeled: bool) -> FileSummary:
    """The summary of a score report, counted from the rows."""
    scored = [r for r in rows if r["status"] == "ok"]
    positive = sum(r["sentiment"] == "positive" for r in scored)
    reasons: dict[str, int] = {}
    for r in rows:
        if r["status"] != "ok":
            reasons[r["status"]] = reasons.get(r["status"], 0) + 1
    return FileSummary(
        file="reviews.csv",
        path="/data/in/reviews.csv",
        rows=total,
        scored=len(scored),
        not_scored=len(rows) - len(scored),
        not_scored_reasons=reasons,
        positive=positive,
        negative=len(scored) - positive,
        positive_share=positive / len(scored) if scored else None,
        threshold=0.5,
        device="CPU",
        seconds=3.21,
        rows_per_second=len(rows) / 3.21,
        text_column="review",
        label_column="label" if labeled else None,
        notes=("read as cp1252",),
    )


def make_context(
    n_rows: int = 60,
    kind: str = "score",
    labeled: bool = True,
    *,
    texts: list[str] | None = None,
    rows_total: int | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> ScoreReport | TrainReport:
    """A realistic report as score.py / train.py build it."""
    page = {"generated_at": "2025-11-21T09:30:00+01:00", "package_version": "0.1.0",
            "model": make_model()}
    if kind == "train":
        return TrainReport(title="imdb-lstm — training", **page)
    pool = texts if texts is not None else SAMPLE_TEXTS + MALICIOUS_TEXTS
    rows = [
        make_row(i, pool[i % len(pool)], labeled=labeled, status=STATUSES[i % len(STATUSES)])
        for i in range(n_rows)
    ]
    scored = [r for r in rows if r["status"] == "ok"]
    counts = [0] * 20
    for r in scored:
        counts[min(19, int(r["score"] * 20))] += 1
    by_score = sorted(scored, key=lambda r: r["score"])
    return ScoreReport(
        title="reviews.csv — sentiment report",
        **page,
        summary=make_summary(rows, rows_total or n_rows, labeled=labeled),
        file_metrics=make_metrics(len(scored), 0.8) if labeled and scored else None,
        score_histogram={"edges": [i / 20 for i in range(21)], "counts": counts},
        highlights={
            "positive": by_score[::-1][:5],
            "negative": by_score[:5],
            "uncertain": sorted(scored, key=lambda r: abs(r["score"] - 0.5))[:5],
        },
        table=ReviewTable(rows=tuple(rows[:max_rows]), total=rows_total or n_rows,
                          max_rows=max_rows),
    )


# Words the stand-in explainer highlights, with their weights (B1's explainer gives real ones).
WORD_WEIGHTS = {
    "warm": 0.7, "funny": 0.55, "favourite": 0.9, "clever": 0.5, "wonderful": 0.8, "beautiful": 0.45,
    "never": -0.6, "wanders": -0.5, "thin": -0.35, "drags": -0.4, "committee": -0.3, "back": -0.25,
}
GROUPS = ["Kettle", "Lamp", "<img src=x onerror=\"window.__pwned = 4\">", "", "{{ 7*7 }} $x$"]
DATES = ["2025-01-0{}", "2025-02-1{}", "2025-03-2{}"]
BAD_DATES = ["<svg onload=alert(5)>", "yesterday"]
DRIVER_TERMS = {
    "positive": ["warm", "funny", "favourite", "warm funny", "<b>bold</b> term"],
    "negative": ["never", "wanders", "never get", "</script><script>window.__pwned=6</script>"],
}


def word_spans(text: str) -> list[list]:
    """[[start, end, weight]] for the known words in text, the shape explain.row_spans gives."""
    return [
        [m.start(), m.end(), WORD_WEIGHTS.get(m.group(0).lower(), 0.0)]
        for m in re.finditer(r"[A-Za-z']+", text)
        if m.group(0).lower() in WORD_WEIGHTS
    ]


def make_drivers(rows: list[dict]) -> dict:
    out: dict = {"reviews_explained": sum(1 for r in rows if r.get("spans"))}
    for side, terms in DRIVER_TERMS.items():
        out[side] = [
            {
                "term": term,
                "weight": sum(WORD_WEIGHTS.get(w, 0.1) for w in term.split()) * 3,
                "reviews": sum(term in (r.get("text") or "").lower() for r in rows),
            }
            for term in terms
        ]
    return out


def add_insights(report: ScoreReport) -> ScoreReport:
    """Give a score report the new sections, computed by the real insights accumulators."""
    import numpy as np
    import pandas as pd

    from review_scorer.metrics import DecisionRule
    from review_scorer.report.insights import FileInsights
    from review_scorer.scoring.kernel import ScoredChunk

    rows = report.table.rows
    for i, row in enumerate(rows):
        row["spans"] = word_spans(row["text"] or "") if row["status"] == "ok" else None
        row["group"] = GROUPS[i % len(GROUPS)]
        row["rating"] = float(1 + (i * 7) % 5) if i % 9 else None
        row["date"] = BAD_DATES[i % 2] if i % 17 == 5 else DATES[i % 3].format(i % 10)
    frame = pd.DataFrame(
        {
            "id": [r["id"] for r in rows],
            "date": [r["date"] for r in rows],
            "product": [r["group"] for r in rows],
            "text": [r["text"] for r in rows],
        }
    )
    acc = FileInsights("date", "product", "stars", 5, 0.5, id_column="id")
    for start in range(0, len(rows), 25):
        part = rows[start : start + 25]
        scores = np.array([np.nan if r["score"] is None else r["score"] for r in part])
        status = np.array([r["status"] for r in part], dtype=object)
        acc.update(ScoredChunk(
            frame=frame.iloc[start : start + 25].reset_index(drop=True),
            rows=np.array([r["row"] for r in part]), texts=[r["text"] for r in part],
            labels=None,
            ratings=np.array([np.nan if r["rating"] is None else r["rating"] for r in part]),
            status=status, scores=scores,
            positive=DecisionRule(0.5).positive(scores) & (status == "ok")))
    insights = acc.context()
    # the made-up spans of the table rows, on the rows the ratings section lists as well
    spans = {r["row"]: r["spans"] for r in rows}
    for name in ("high_rating_negative", "low_rating_positive"):
        for item in insights["ratings"][name]:
            item["spans"] = spans[item["row"]]
    for items in report.highlights.values():
        for item in items:
            item["spans"] = word_spans(item["text"] or "")
    return replace(report, **insights, drivers=make_drivers(list(rows)))


def rows_island(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="rows-data">(.*?)</script>', html, re.S)
    assert m, "rows-data island missing"
    return json.loads(m.group(1))


class _Collector(HTMLParser):
    """Collects tags with their attributes and the text of script elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector


@pytest.fixture(scope="module")
def score_html() -> str:
    return build_report_html(make_context())


# ---------------------------------------------------------------- report structure


@pytest.fixture(scope="module")
def insight_html() -> str:
    return build_report_html(add_insights(make_context(n_rows=90)))


def test_report_score_sections_in_order(score_html):
    ids = [a.get("id") for tag, a in parse(score_html).tags if tag == "section"]
    # The file's own results first, the model's training details after them.
    assert ids == ["summary", "file-metrics", "highlights", "reviews", "model"]


def test_report_new_sections_appear_in_order_when_their_data_exists(insight_html):
    ids = [a.get("id") for tag, a in parse(insight_html).tags if tag == "section"]
    assert ids == [
        "summary", "drivers", "timeline", "groups", "ratings",
        "file-metrics", "highlights", "reviews", "model",
    ]
    toc = insight_html.split('class="toc"')[1].split("</nav>")[0]
    assert re.findall(r'href="#([a-z-]+)"', toc) == ids


def test_report_title_names_the_file(score_html):
    title = re.search(r"<title>(.*?)</title>", score_html, re.S).group(1)
    assert "reviews.csv" in title


def test_report_title_gets_file_name_even_when_caller_title_lacks_it():
    context = replace(make_context(n_rows=5), title="Sentiment report")
    html = build_report_html(context)
    assert "reviews.csv" in re.search(r"<title>(.*?)</title>", html, re.S).group(1)


def test_report_controls_and_table_ids_present(score_html):
    ids = {a.get("id") for _, a in parse(score_html).tags}
    for needed in (
        "search",
        "filter-sentiment",
        "filter-status",
        "sort",
        "page-size",
        "prev-page",
        "next-page",
        "page-info",
        "match-count",
        "rows-body",
        "rows-data",
    ):
        assert needed in ids, needed


def test_report_status_filter_lists_each_status_present(score_html):
    block = re.search(r'<select id="filter-status">(.*?)</select>', score_html, re.S).group(1)
    values = re.findall(r'<option value="([^"]*)"', block)
    assert values == ["all", "ok", "empty text", "no words"]


def test_report_makes_no_external_references(score_html):
    parsed = parse(score_html)
    for tag, attrs in parsed.tags:
        for name in ("src", "href", "xlink:href", "action", "poster", "data"):
            value = (attrs.get(name) or "").strip().lower()
            assert not re.match(r"^(https?:)?//", value), (tag, name, value)
            assert not value.startswith(("http:", "https:", "ftp:")), (tag, name, value)
    # Also the raw text, including inline SVG and CSS.
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", score_html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", score_html, re.I)
    assert "@import" not in score_html
    assert '<link rel="icon" href="data:,">' in score_html


def test_report_has_content_security_policy_with_script_hash(score_html):
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', score_html)
    assert csp and "default-src 'none'" in csp.group(1)
    assert "'unsafe-inline'" not in csp.group(1).split("script-src")[1].split(";")[0]
    # The hash is of our script exactly, so the browser runs it and nothing else.
    script = parse(score_html).scripts[1]
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    assert f"'sha256-{digest}'" in csp.group(1)


def test_report_template_loader_finds_package_templates():
    env = report._environment()
    for name in ("base.html", "score.html", "train.html", "report.js", "report.css"):
        assert env.loader.get_source(env, name)[0].strip(), name


# ---------------------------------------------------------------- escaping


def test_report_malicious_text_is_not_rendered_as_markup(score_html):
    parsed = parse(score_html)
    tag_names = [t for t, _ in parsed.tags]
    # Exactly two scripts: the JSON island and our own code; no injected img/textarea/b.
    assert tag_names.count("script") == 2
    assert "img" not in tag_names and "textarea" not in tag_names and "b" not in tag_names
    for _, attrs in parsed.tags:
        assert not any(name.startswith("on") for name in attrs), attrs
    for payload in MALICIOUS_TEXTS[:4]:
        assert payload not in score_html
    assert "<svg onload" not in score_html
    assert "\u2028" not in score_html and "\u2029" not in score_html
    # Only the JSON island holds review text, and it holds it escaped.
    island = parsed.scripts[0]
    assert "<" not in island and ">" not in island and "&" not in island


def test_report_json_island_round_trips_the_texts():
    context = make_context(n_rows=len(SAMPLE_TEXTS + MALICIOUS_TEXTS) * 2)
    island = rows_island(build_report_html(context))
    by_row = {r[0]: r for r in island["rows"]}
    for row in context.table.rows:
        packed = by_row[row["row"]]
        assert packed[1] == row["id"]
        assert packed[2] == row["text"]
        assert packed[4] == row["score"]
        assert island["statuses"][packed[5]] == row["status"]


def test_report_script_json_escapes_everything_that_could_end_a_script():
    text = formatting.script_json(["</script><!-- & \u2028 \u2029 >"])
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == ["</script><!-- & \u2028 \u2029 >"]


def test_report_highlights_escape_text_and_template_syntax():
    text = "{{ 7*7 }} <img src=x onerror=alert(1)> " + "long " * 100
    context = make_context(n_rows=3, texts=[text])
    html = build_report_html(context)
    highlights = html.split('id="highlights"')[1].split('id="reviews"')[0]
    assert "{{ 7*7 }}" in highlights  # shown literally, not evaluated to 49
    assert "&lt;img src=x onerror=alert(1)&gt;" in highlights
    assert "<img" not in highlights
    assert "<details>" in highlights  # long text: shortened, full text behind details


# ---------------------------------------------------------------- truncation and size


def test_report_truncation_note_when_rows_are_capped():
    context = make_context(n_rows=30, rows_total=1000, max_rows=30)
    html = build_report_html(context)
    assert "showing the first 30 of 1,000 rows; the predictions file has them all" in html
    assert len(rows_island(html)["rows"]) == 30


def test_report_no_truncation_note_when_all_rows_fit(score_html):
    assert "showing the first" not in score_html


def test_report_caps_rows_to_max_rows_even_if_given_more():
    context = make_context(n_rows=40, max_rows=40)
    context = replace(context, table=replace(context.table, max_rows=10))
    html = build_report_html(context)
    assert len(rows_island(html)["rows"]) == 10
    assert "showing the first 10 of 40 rows" in html


def test_report_zero_max_rows_shows_no_rows_and_says_so():
    context = make_context(n_rows=8)
    context = replace(context, table=replace(context.table, max_rows=0, rows=()))
    html = build_report_html(context)
    assert rows_island(html)["rows"] == []
    assert "showing the first 0 of 8 rows" in html


@pytest.mark.slow
def test_report_100k_rows_page_stays_under_30_mb(tmp_path):
    base = (
        "This film takes its time, but the patience pays off in a final half hour that is "
        "moving & sharp. <br /><br />The cast is uniformly good. "
    )
    texts = [(f"Review {i}: " + base * 12)[:1000] for i in range(97)]
    context = make_context(
        n_rows=DEFAULT_MAX_ROWS, texts=texts, rows_total=100_000, max_rows=DEFAULT_MAX_ROWS
    )
    out = publish_report(context, tmp_path / "big.html")
    size = out.stat().st_size
    assert size < 30_000_000, size
    html = out.read_text(encoding="utf-8")
    assert "showing the first 20,000 of 100,000 rows; the predictions file has them all" in html
    island = rows_island(html)
    assert len(island["rows"]) == DEFAULT_MAX_ROWS
    assert all(not r[7] for r in island["rows"])  # 1000-char texts fit whole


def test_report_very_long_texts_are_cut_to_keep_the_page_small(monkeypatch):
    monkeypatch.setattr(rows_view, "TEXT_BUDGET_BYTES", 20_000)
    texts = ["short and sweet", "x" * 30_000, "y" * 5_000]
    context = make_context(n_rows=3, texts=texts)
    context.table.rows[1]["status"] = "ok"
    html = build_report_html(context)
    island = rows_island(html)
    sizes = [len(r[2].encode()) for r in island["rows"]]
    assert sum(sizes) <= 20_000 + 10
    assert island["rows"][0][2] == context.table.rows[0]["text"] and island["rows"][0][7] == 0
    assert island["rows"][1][7] == 1
    assert "long reviews are cut short" in html


# ---------------------------------------------------------------- kinds and edge cases


def test_report_training_report_has_no_per_file_sections():
    html = build_report_html(make_context(kind="train"))
    ids = [a.get("id") for tag, a in parse(html).tags if tag == "section"]
    assert ids == ["summary", "model"]
    assert "rows-data" not in html and "<script>" not in html
    assert "imdb-lstm" in re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert 'id="curve-loss-train"' in html


def test_report_without_history_or_test_metrics_still_renders():
    context = replace(make_context(kind="train"), model=make_model(history=False, tested=False))
    html = build_report_html(context)
    assert "No training history recorded" in html
    assert "not evaluated" in html
    assert "<svg" not in html


def test_report_without_labels_has_no_file_confusion_matrix():
    html = build_report_html(make_context(n_rows=20, labeled=False))
    section = html.split('id="file-metrics"')[1].split('id="highlights"')[0]
    assert "no label column" in section
    assert 'class="plot plot-hist"' in section and "plot-cm-" not in section
    assert rows_island(html)["has_label"] is False


def test_report_with_labels_shows_file_confusion_matrix(score_html):
    section = score_html.split('id="file-metrics"')[1].split('id="highlights"')[0]
    assert 'class="plot plot-cm-this-file"' in section
    assert "this file" in section


def test_report_with_zero_scored_rows():
    context = make_context(n_rows=6)
    for row in context.table.rows:
        row.update(status="empty text", score=None, sentiment="", text="")
    context = replace(
        context,
        summary=replace(context.summary, scored=0, positive=0, negative=0, positive_share=None,
                        not_scored=6, not_scored_reasons={"empty text": 6}),
        file_metrics=None,
        highlights={"positive": [], "negative": [], "uncertain": []},
        score_histogram={"edges": [i / 20 for i in range(21)], "counts": [0] * 20},
    )
    html = build_report_html(context)
    assert "no scored reviews" in html
    assert "n/a" in html.split('id="summary"')[1].split('id="model"')[0]
    assert rows_island(html)["statuses"] == ["empty text"]


# ---------------------------------------------------------------- the summary (issues 18 and 20)


def _cards(html: str, container_id: str) -> list[tuple[str, str, str | None]]:
    """(label, value, note) of each card in the element with this id, as a reader sees them."""
    import html as html_module

    def text(fragment: str) -> str:
        return html_module.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()

    part = html.split(f'id="{container_id}"')[1].split("\n  </div>")[0]
    out = []
    for inner in re.findall(r'<div class="card[^"]*"[^>]*>(.*?)</div>', part):
        label = re.search(r'class="card-label">(.*?)</span><span class="card-value">', inner)
        value = re.search(r'class="card-value">(.*?)</span>', inner)
        note = re.search(r'class="card-note">(.*?)</span>', inner)
        out.append((text(label.group(1)), text(value.group(1)), note and text(note.group(1))))
    return out


def test_report_summary_shares_add_up_to_100_percent():
    # 23 of 80 is 28.75% and 57 of 80 is 71.25%: rounding each alone shows 28.7% + 71.2% = 99.9%.
    assert [formatting._fmt_pct(23 / 80), formatting._fmt_pct(57 / 80)] == ["28.7%", "71.2%"]
    assert formatting.rounded_shares([23, 57]) == ["28.8%", "71.2%"]
    assert formatting.rounded_shares([1, 1, 1]) == ["33.4%", "33.3%", "33.3%"]
    assert formatting.rounded_shares([0, 0]) == ["n/a", "n/a"]
    for total in range(1, 400):
        for positive in range(total + 1):
            shown = formatting.rounded_shares([positive, total - positive])
            assert round(sum(float(v.rstrip("%")) for v in shown), 1) == 100.0, (positive, total)
            # never more than one step away from the exact share
            assert abs(float(shown[0].rstrip("%")) - 100 * positive / total) < 0.1 + 1e-9
    context = make_context(n_rows=6)
    context = replace(context, summary=replace(context.summary, scored=80, positive=23,
                                               negative=57, positive_share=23 / 80))
    html = build_report_html(context)
    shares = {label: value for label, value, _ in _cards(html, "summary-cards")}
    assert (shares["Positive"], shares["Negative"]) == ("28.8%", "71.2%")
    assert 'aria-label="28.8% positive, 71.2% negative"' in html


def test_report_summary_leads_with_this_files_figures_beside_the_models():
    context = make_context(n_rows=60)
    metrics, test = context.file_metrics, context.model.test_metrics
    html = build_report_html(context)
    summary = html.split('id="summary"')[1].split("</section>")[0]
    # The headline comes first in the Summary, before the counts.
    assert summary.index('id="summary-headline"') < summary.index('id="summary-cards"')
    cards = _cards(html, "summary-headline")
    n = f"n = {metrics['n']:,} labelled reviews"
    assert cards == [
        ("Accuracy on this file", f"{metrics['accuracy']:.1%}", n),
        ("ROC AUC on this file", f"{metrics['roc_auc']:.3f}", n),
        ("Model's IMDB test accuracy", f"{test['accuracy']:.1%}",
         f"its own test set (n = {test['n']:,}), not this file"),
    ]
    assert 'id="headline-model"' in summary and "card-model" in summary
    # With one class only there is no ROC AUC: F1 leads instead.
    context = replace(context, file_metrics={**metrics, "roc_auc": None, "f1": 0.625})
    cards = _cards(build_report_html(context), "summary-headline")
    assert cards[1] == ("F1 on this file", "0.625", n)
    # A model trained elsewhere says "own", not IMDB.
    context = replace(context, model=replace(context.model, data_source="shop_labels.csv"))
    assert _cards(build_report_html(context), "summary-headline")[-1][0] == "Model's own test accuracy"
    # An adapted model's accuracy is cross-validated on the labels it was adapted with, and named so.
    adapted = replace(context.model, test_metrics={**test, "kind": "cross-validated on the training file"})
    assert _cards(build_report_html(replace(context, model=adapted)), "summary-headline")[-1] == (
        "Model's cross-validated accuracy", f"{test['accuracy']:.1%}",
        f"on the labels it was adapted with (n = {test['n']:,}), not this file")


def test_report_summary_headline_for_rated_and_unlabelled_files():
    unlabelled = build_report_html(make_context(n_rows=20, labeled=False))
    assert 'id="summary-headline"' not in unlabelled
    rated = add_insights(make_context(n_rows=40, labeled=False))
    ratings = rated.ratings
    cards = _cards(build_report_html(rated), "summary-headline")
    assert cards[0] == ("Agrees with the star ratings", f"{ratings['agreement']:.1%}",
                        f"n = {ratings['compared']:,} rated reviews")
    assert cards[1][0] == "Model's IMDB test accuracy"


def test_report_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        build_report_html({"kind": "other", "model": make_model()})
    with pytest.raises(ValueError, match="kind"):
        build_report_html(make_model())


# ---------------------------------------------------------------- publish_report


def test_report_publish_refuses_to_overwrite(tmp_path):
    out = tmp_path / "reviews.html"
    out.write_text("keep me", encoding="utf-8")
    with pytest.raises(OutputError) as info:
        publish_report(make_context(n_rows=3), out)
    message = str(info.value)
    assert "\n" not in message and str(out) in message and "--overwrite" in message
    assert out.read_text(encoding="utf-8") == "keep me"


def test_report_publish_overwrite_replaces_atomically(tmp_path):
    out = tmp_path / "reviews.html"
    out.write_text("old", encoding="utf-8")
    assert publish_report(make_context(n_rows=3), out, overwrite=True) == out
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reviews.html"]


def test_report_publish_creates_missing_parent_and_leaves_no_temp_files(tmp_path):
    out = tmp_path / "reports" / "reviews.html"
    publish_report(make_context(n_rows=3), out)
    assert [p.name for p in out.parent.iterdir()] == ["reviews.html"]


def test_report_publish_into_unwritable_place_is_output_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(OutputError, match="cannot write the report"):
        publish_report(make_context(n_rows=3), blocker / "reviews.html")
    with pytest.raises(OutputError, match="is a directory"):
        publish_report(make_context(n_rows=3), tmp_path)


def test_report_publish_cleans_up_temp_file_when_replace_fails(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    from review_scorer.io import publish as outputs

    monkeypatch.setattr(outputs.os, "replace", fail)
    monkeypatch.setattr(outputs.os, "link", fail)
    with pytest.raises(OutputError, match="Permission denied"):
        publish_report(make_context(n_rows=3), tmp_path / "reviews.html")
    assert list(tmp_path.iterdir()) == []


def test_report_publish_with_other_files_is_all_or_none(tmp_path, monkeypatch):
    from review_scorer.io.publish import write_temp_beside

    predictions, out = tmp_path / "reviews.predictions.csv", tmp_path / "reviews.html"
    temp = write_temp_beside(predictions, b"row,score\n")
    assert publish_report(make_context(n_rows=3), out, together=[(temp, predictions)]) == out
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name, predictions.name]
    # a report that fails to render publishes neither file and leaves no temp file
    def fail(*args):
        raise RuntimeError("render failed")

    monkeypatch.setattr(report, "build_report_html", fail)
    temp = write_temp_beside(predictions, b"new")
    with pytest.raises(RuntimeError, match="render failed"):
        publish_report(make_context(n_rows=3), out, overwrite=True,
                       together=[(temp, predictions)])
    assert predictions.read_bytes() == b"row,score\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name, predictions.name]


# ---------------------------------------------------------------- plots


def _svg_ok(svg: str) -> None:
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg and "<!DOCTYPE" not in svg
    assert 'role="img"' in svg and "aria-label=" in svg and "<title>" in svg
    assert "<image" not in svg  # vector only, no embedded bitmaps
    assert len(svg) < 60_000


def test_plots_training_curves_have_four_series_and_best_epoch():
    svg = plots.training_curves_svg(make_model().history, 3)
    _svg_ok(svg)
    series = re.findall(r'id="(curve-[a-z]+-[a-z]+)"', svg)
    assert sorted(series) == sorted(
        [
            "curve-loss-train",
            "curve-loss-validation",
            "curve-accuracy-train",
            "curve-accuracy-validation",
        ]
    )
    assert "best epoch 3" in svg
    assert "<text" in svg  # text kept as text (svg.fonttype none)


def test_plots_training_curves_one_epoch_and_missing_validation():
    svg = plots.training_curves_svg({"loss": [0.5], "accuracy": [0.8]}, 1)
    _svg_ok(svg)
    assert re.findall(r'id="(curve-[a-z]+-[a-z]+)"', svg) == [
        "curve-loss-train",
        "curve-accuracy-train",
    ]


def test_plots_training_curves_empty_history_is_none():
    assert plots.training_curves_svg({}, None) is None
    assert plots.training_curves_svg({"loss": [], "val_loss": []}, None) is None


def test_plots_confusion_matrix_counts_and_row_percentages():
    svg = plots.confusion_matrix_svg([[90, 10], [30, 70]], "IMDB test set")
    _svg_ok(svg)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    # Cells in reading order: tn, fp, fn, tp, each count then its share of the true class.
    cells = [t for t in texts if re.fullmatch(r"[\d,]+|[\d.]+%", t)]
    assert cells == ["90", "90.0%", "10", "10.0%", "30", "30.0%", "70", "70.0%"]
    for word in ("true", "predicted", "negative", "positive", "IMDB test set"):
        assert word in texts
    assert "true positive, predicted negative: 30 (30.0%)" in svg  # in the aria-label


def test_plots_confusion_matrix_all_zero_counts():
    svg = plots.confusion_matrix_svg([[0, 0], [0, 0]], "empty")
    _svg_ok(svg)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert texts.count("0") == 4 and texts.count("–") == 4
    assert "nan" not in " ".join(texts).lower()


def test_plots_confusion_matrix_title_is_not_parsed_as_math_or_markup():
    svg = plots.confusion_matrix_svg([[1, 0], [0, 1]], "$x$ <b>file</b>")
    assert "$x$" in svg and "<b>" not in svg


def test_plots_histogram_has_one_bar_per_bin_and_threshold():
    hist = {"edges": [i / 20 for i in range(21)], "counts": list(range(20))}
    svg = plots.score_histogram_svg(hist, 0.5)
    _svg_ok(svg)
    assert len(re.findall(r'id="hist-bar-\d+"', svg)) == 20
    assert "threshold 0.50" in svg


def test_plots_histogram_splits_a_bin_across_the_threshold_and_counts_decisions():
    counts, positive = [0] * 20, [0] * 20
    counts[14], positive[14] = 5, 2  # [0.70, 0.75): 3 below 0.73, 2 at or above it
    counts[18], positive[18] = 4, 4
    hist = {"edges": [i / 20 for i in range(21)], "counts": counts, "positive_counts": positive}
    svg = plots.score_histogram_svg(hist, 0.73)
    _svg_ok(svg)
    assert "3 below and 6 at or above the threshold 0.73" in svg
    assert 'id="hist-bar-14-positive"' in svg and 'id="hist-bar-18-positive"' not in svg
    # Without the decisions the description claims no split it cannot know.
    plain = plots.score_histogram_svg({"edges": hist["edges"], "counts": counts}, 0.73)
    assert "Histogram of 9 scores in 20 bins; threshold 0.73" in plain and "at or above" not in plain


def test_plots_histogram_all_zero_counts():
    svg = plots.score_histogram_svg({"edges": [i / 20 for i in range(21)], "counts": [0] * 20}, 0.5)
    _svg_ok(svg)
    assert "no scored reviews" in svg


def test_plots_ids_are_unique_across_one_page(score_html):
    ids = re.findall(r'\sid="([^"]+)"', score_html)
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates


def test_plots_svg_output_is_deterministic():
    history = make_model().history
    assert plots.training_curves_svg(history, 2) == plots.training_curves_svg(history, 2)


# ---------------------------------------------------------------- why, when and where (issue 12)


def _section(html: str, name: str) -> str:
    return html.split(f'<section id="{name}"')[1].split("</section>")[0]


def test_report_text_segments_apply_spans_to_the_original_text():
    text = "Warm and<br /><br />funny, never dull."
    segments, cut = rows_view.text_segments(text, word_spans(text))
    assert not cut
    assert "".join(seg["text"] for seg in segments) == "Warm and\n\nfunny, never dull."
    marked = [(seg["text"], seg["css"]) for seg in segments if seg["css"]]
    assert marked == [("Warm", "hl pos w3"), ("funny", "hl pos w3"), ("never", "hl neg w3")]
    assert next(seg["title"] for seg in segments if seg["css"]) == "+0.70: pushes positive"


def test_report_text_segments_cut_previews_and_drop_bad_spans():
    text = "never " * 80 + "funny"
    segments, cut = rows_view.text_segments(text, word_spans(text), 40)
    assert cut and segments[-1]["text"].endswith("…") and not segments[-1]["css"]
    assert sum(len(seg["text"]) for seg in segments) <= 41
    marked = [seg["text"] for seg in segments if seg["css"]]
    assert marked == ["never"] * 6  # the seventh would be cut in half, so the preview stops before it
    bad = [[5, 2, 0.5], [-1, 3, 0.5], [0, 999, 0.5], ["x", 1, 0.2], [0, 4, float("nan")], [0, 4]]
    segments, _ = rows_view.text_segments("abcdef", [*bad, [0, 3, 2.5], [1, 4, -0.5]])
    # Only [0, 3] survives (weight clipped to 1); the overlapping [1, 4] is dropped.
    assert [(seg["text"], seg["css"]) for seg in segments] == [("abc", "hl pos w4"), ("def", None)]
    # A preview never ends inside an HTML line break.
    segments, cut = rows_view.text_segments("a" * 38 + "<br />tail", None, 40)
    assert cut and "<" not in "".join(seg["text"] for seg in segments)


def test_report_rows_payload_carries_spans_groups_and_ratings(insight_html):
    island = rows_island(insight_html)
    assert island["has_spans"] and island["has_rating"]
    assert island["groups"] == sorted({g or "(none)" for g in GROUPS})
    context = add_insights(make_context(n_rows=90))
    for row, packed in zip(context.table.rows, island["rows"], strict=True):
        assert packed[8] == (row["spans"] or None)
        assert island["groups"][packed[9]] == (row["group"] or "(none)")
        assert packed[10] == row["rating"]


def test_report_cut_texts_keep_only_spans_that_fit(monkeypatch):
    monkeypatch.setattr(rows_view, "TEXT_BUDGET_BYTES", 2_000)
    text = "never " * 1000 + "funny"
    context = make_context(n_rows=1, texts=[text])
    context.table.rows[0]["spans"] = word_spans(text)
    packed = rows_island(build_report_html(context))["rows"][0]
    assert packed[7] == 1 and packed[8]
    assert max(end for _, end, _ in packed[8]) <= len(packed[2])


def test_report_drivers_section_lists_terms_as_buttons(insight_html):
    section = _section(insight_html, "drivers")
    terms = re.findall(r'<button type="button" class="term (pos|neg)" data-term="([^"]*)"', section)
    assert [t for side, t in terms if side == "pos"][:3] == ["warm", "funny", "favourite"]
    assert ("neg", "never get") in terms
    # Weights are signed, counts say how many reviews hold the term.
    assert f"{WORD_WEIGHTS['warm'] * 3:+.2f}</span>" in section and " reviews</span>" in section


def test_report_timeline_section_plots_tables_and_lists_unreadable_dates(insight_html):
    section = _section(insight_html, "timeline")
    assert 'class="plot plot-timeline"' in section
    assert len(re.findall(r"<tr><th scope=\"row\">", section)) >= 3
    assert "could not be read" in section and "row 6:" in section
    assert "&lt;svg onload=alert(5)&gt;" in section and "<svg onload" not in section


def test_report_groups_section_is_sortable_and_escapes_names(insight_html):
    section = _section(insight_html, "groups")
    assert 'id="groups-table"' in section and section.count('class="sort"') == 5
    names = re.findall(r'<tr data-name="([^"]*)"', section)
    assert len(names) == len(GROUPS) and "(none)" in names
    assert "&lt;img src=x onerror=" in section and "<img" not in section
    assert "{{ 7*7 }}" in section  # shown literally, not evaluated
    assert 'class="plot plot-groups"' in section


def test_report_ratings_section_shows_neutral_and_disagreements(insight_html):
    section = _section(insight_html, "ratings")
    context = add_insights(make_context(n_rows=90))
    neutral = sum(1 for r in context.table.rows if r["rating"] == 3.0)
    assert f"{neutral} neutral" in section
    assert 'class="plot plot-ratings"' in section
    high = context.ratings["high_rating_negative"]
    assert high and f"row {high[0]['row']}" in section
    assert 'id="disagree-high-rating-negative"' in section
    assert 'id="disagree-low-rating-positive"' in section


def test_report_new_places_with_text_never_render_markup(insight_html):
    parsed = parse(insight_html)
    tag_names = [t for t, _ in parsed.tags]
    assert tag_names.count("script") == 2
    assert "img" not in tag_names and "b" not in tag_names
    for _, attrs in parsed.tags:
        assert not any(name.startswith("on") for name in attrs), attrs
    assert "<svg onload" not in insight_html and "__pwned = 4\">" not in insight_html
    island = parsed.scripts[0]
    assert "<" not in island and ">" not in island


def test_report_highlights_mark_words_in_text_order(insight_html):
    section = _section(insight_html, "highlights")
    marks = re.findall(r'<mark class="hl (pos|neg) w\d" title="[^"]*">([^<]*)</mark>', section)
    assert ("pos", "warm") in marks or ("pos", "favourite") in marks
    assert all((side == "pos") == (WORD_WEIGHTS[word.lower()] > 0) for side, word in marks)


def test_report_strong_spans_are_the_few_that_move_the_score():
    weights = [0.1, -1.0, 0.5, 0.3, 0.36, -0.2, 0.05]
    spans = [[i * 4, i * 4 + 3, w] for i, w in enumerate(weights)]
    # The four strongest are 1.0, 0.5, 0.36 and 0.3, but 0.3 is under 35% of the strongest.
    assert rows_view.strong_span_indices(spans) == [1, 2, 4]
    # Equal weights are equally strong: all of them, however many.
    assert rows_view.strong_span_indices([[i, i + 1, 0.4] for i in range(0, 12, 2)]) == list(range(6))
    assert rows_view.strong_span_indices([]) == []


def test_report_only_the_strongest_words_are_marked_and_all_are_listed():
    text = "the film and the cast were wonderful but the end drags"
    weights = {"the": 0.05, "film": 0.1, "and": -0.04, "cast": 0.2, "were": 0.02,
               "wonderful": 0.9, "but": -0.4, "end": -0.1, "drags": -0.6}
    spans = [[m.start(), m.end(), weights[m.group(0)]] for m in re.finditer(r"[a-z]+", text)]
    segments, _ = rows_view.text_segments(text, spans)
    assert [seg["text"] for seg in segments if seg["css"]] == ["wonderful", "but", "drags"]
    assert "".join(seg["text"] for seg in segments) == text
    words = rows_view.word_list(text, spans)
    assert len(words) == len(spans)
    assert [w["text"] for w in words[:3]] == ["wonderful", "drags", "but"]
    assert words[0]["weight"] == "+0.90" and words[-1]["css"].startswith("hl pos")

    context = make_context(n_rows=3, texts=[text])
    context.highlights["positive"][0]["spans"] = spans
    for row in context.table.rows:
        row["spans"] = spans
    html = build_report_html(context)
    item = re.split(r'<li class="highlight">|</ol>', html.split('id="highlights-positive"')[1])[1]
    preview = item.split('<details class="words">')[0]
    assert re.findall(r"<mark [^>]*>([^<]*)</mark>", preview) == ["wonderful", "but", "drags"]
    listed = item.split('<details class="words">')[1]
    assert f"all {len(spans)} weighted words" in listed
    assert len(re.findall(r"<mark ", listed)) == len(spans) == 11
    packed = rows_island(html)["rows"]
    strong = [i for i, (a, b, _) in enumerate(spans) if text[a:b] in ("wonderful", "but", "drags")]
    assert strong == [6, 7, 10] and all(r[12] == strong for r in packed if r[8])


def test_report_group_filter_lists_every_group(insight_html):
    block = re.search(r'<select id="filter-group">(.*?)</select>', insight_html, re.S).group(1)
    labels = re.findall(r"<option value=\"[^\"]*\">([^<]*)</option>", block)
    assert labels[0] == "all" and len(labels) == len(GROUPS) + 1


def test_report_sections_absent_without_data(score_html):
    for name in ("drivers", "timeline", "groups", "ratings"):
        assert f'id="{name}"' not in score_html
    assert 'id="filter-group"' not in score_html


def test_report_timeline_names_dates_left_out_as_far_from_the_others():
    import numpy as np

    from review_scorer.report.insights import TimelineAccumulator

    acc = TimelineAccumulator("when")
    for day in [*(f"2024-03-{d:02d}" for d in range(1, 11)), "0224-03-01", "2024-03-05"]:
        acc.days.setdefault(int(np.datetime64(day, "D").astype(np.int64)), np.zeros(4))
        acc.days[int(np.datetime64(day, "D").astype(np.int64))] += (1, 1, 1, 0.9)
    context = replace(make_context(n_rows=5), timeline=acc.context())
    section = _section(build_report_html(context), "timeline")
    assert 'id="timeline-far"' in section
    assert "1 review dated far from all the others (0224-03-01; a typo in the year?) is left out" in section
    assert "11 reviews dated from 2024-03-01 to 2024-03-10" in section


def test_report_timeline_without_readable_dates_says_so():
    context = replace(make_context(n_rows=5), timeline={
        "column": "when", "buckets": [], "dated": 0, "missing": 1, "unreadable": 4,
        "unreadable_examples": [{"row": 1, "value": "soon"}],
    })
    section = _section(build_report_html(context), "timeline")
    assert "No date in column" in section and "4 dates could not be read" in section


def test_plots_timeline_groups_and_ratings():
    context = add_insights(make_context(n_rows=90))
    svg = plots.timeline_svg(context.timeline)
    _svg_ok(svg)
    assert 'id="timeline-share"' in svg and 'id="timeline-mean"' in svg
    buckets = context.timeline["buckets"]
    assert len(re.findall(r'id="timeline-count-\d+"', svg)) == len(buckets)
    svg = plots.groups_svg(context.groups, 0.5)
    _svg_ok(svg)
    assert len(re.findall(r'id="group-point-\d+"', svg)) == len(GROUPS)
    assert "$x$" in svg and "<img" not in svg  # names literal: no mathtext, escaped
    svg = plots.rating_scores_svg(context.ratings)
    _svg_ok(svg)
    assert len(re.findall(r'id="rating-mean-\d+"', svg)) == len(context.ratings["values"])


def _monthly(n: int, freq: str = "MS", granularity: str = "month") -> dict:
    import pandas as pd

    starts = pd.date_range("2023-11-01", periods=n, freq=freq)
    return {"granularity": granularity, "buckets": [
        {"start": str(d.date()), "reviews": 3 + i % 4, "positive_share": 0.5, "mean_score": 0.5}
        for i, d in enumerate(starts)]}


@pytest.mark.parametrize("n,freq,granularity", [
    (12, "MS", "month"), (13, "MS", "month"), (24, "MS", "month"), (40, "MS", "month"),
    (179, "MS", "month"), (31, "D", "day"), (26, "W-MON", "week"),
])
def test_plots_timeline_tick_labels_never_overlap(n, freq, granularity):
    import matplotlib

    with matplotlib.rc_context(plots._RC):
        fig, _ = plots.timeline_figure(_monthly(n, freq, granularity))
        fig.draw_without_rendering()
        ax = fig.axes[0]
        labels = [t for t in ax.get_xticklabels() if t.get_text()]
        boxes = sorted((t.get_window_extent() for t in labels), key=lambda b: b.x0)
    assert 5 <= len(labels) <= 12, [t.get_text() for t in labels]
    for left, right in itertools.pairwise(boxes):
        assert right.x0 > left.x1, "two tick labels overlap"
    # Evenly spaced ticks, starting at the first bucket.
    ticks = list(ax.get_xticks())
    assert ticks[0] == 0 and len({b - a for a, b in itertools.pairwise(ticks)}) <= 1
    if granularity == "month":
        # Short month names; the year under the first label and wherever the year changes.
        starts = [b["start"] for b in _monthly(n)["buckets"]]
        months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        previous = None
        for tick, label in zip(ticks, labels):
            year, month = starts[int(tick)][:4], months[int(starts[int(tick)][5:7]) - 1]
            assert label.get_text() == (month if year == previous else f"{month}\n{year}")
            previous = year


def test_plots_timeline_svg_keeps_short_month_labels_as_text():
    svg = plots.timeline_svg(_monthly(18))
    _svg_ok(svg)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    # 18 months from Nov 2023: every second month, each year once, on its own line
    ticks = [t for t in texts if re.fullmatch(r"[A-Z][a-z]{2}|20\d\d", t)]
    assert ticks == ["Nov", "2023", "Jan", "2024", "Mar", "May", "Jul", "Sep", "Nov", "Jan", "2025",
                     "Mar"]


def test_plots_new_plots_without_data_are_none():
    assert plots.timeline_svg({"buckets": []}) is None
    assert plots.timeline_svg({"buckets": [{"start": "2025-01-01", "reviews": 0}]}) is None
    assert plots.groups_svg({"items": [{"name": "a", "positive_share": None, "reviews": 3}]}) is None
    assert plots.rating_scores_svg({"values": []}) is None


def test_report_column_names_with_markup_stay_text():
    context = add_insights(make_context(n_rows=40))
    context = replace(context, **{
        key: {**getattr(context, key), "column": f"<i onmouseover=alert(1)>{key}</i> $x$"}
        for key in ("timeline", "groups", "ratings")})
    html = build_report_html(context)
    tag_names = [t for t, _ in parse(html).tags]
    assert "i" not in tag_names
    assert "<i onmouseover" not in html
    assert html.count("&lt;i onmouseover=alert(1)&gt;") >= 4  # sections, table header, plot label


def test_report_group_filter_caps_its_options(monkeypatch):
    monkeypatch.setattr(rows_view, "MAX_GROUP_OPTIONS", 3)
    context = make_context(n_rows=12)
    for i, row in enumerate(context.table.rows):
        row["group"] = "big" if i < 6 else f"small {i:02d}"  # one common group, six rare ones
    island = rows_island(build_report_html(context))
    # Ties between the rare ones are broken by name, so the page does not depend on row order.
    assert island["groups"] == ["big", "small 06", "small 07", "(other groups)"]
    picked = [island["groups"][r[9]] for r in island["rows"]]
    assert picked == ["big"] * 6 + ["small 06", "small 07"] + ["(other groups)"] * 4


def test_report_groups_plot_keeps_to_the_largest_groups():
    context = replace(make_context(n_rows=6), groups={
        "column": "shop",
        "total_groups": 40,
        "items": [
            {"name": f"shop {i:02d}", "reviews": 100 - i, "scored": 100 - i, "positive": 50,
             "positive_share": 50 / (100 - i), "ci_low": 0.3, "ci_high": 0.7, "mean_score": 0.5}
            for i in range(40)
        ],
    })
    section = _section(build_report_html(context), "groups")
    assert len(re.findall(r'id="group-point-\d+"', section)) == sections.GROUPS_PLOTTED
    assert f"The {sections.GROUPS_PLOTTED} groups with the most reviews are plotted" in section
    assert len(re.findall(r"<tr data-name=", section)) == 40


def test_report_rows_carry_driver_term_indices_when_given():
    context = add_insights(make_context(n_rows=6))
    context.table.rows[0]["terms"] = [2, 0, 2, -1, "x"]
    context.table.rows[1]["terms"] = []
    html = build_report_html(context)
    packed = rows_island(html)["rows"]
    assert packed[0][11] == [0, 2] and packed[1][11] == [] and packed[2][11] is None
    # Buttons are numbered positive terms first, then negative: the numbering rows use.
    indices = re.findall(r'data-term="[^"]*" data-index="(\d+)"', _section(html, "drivers"))
    assert [int(i) for i in indices] == list(range(sum(len(v) for v in DRIVER_TERMS.values())))


def test_report_sampled_rows_are_called_a_sample_not_the_first_rows():
    context = make_context(n_rows=30, rows_total=1000, max_rows=30)
    first = build_report_html(context)
    assert "showing the first 30 of 1,000 rows" in first
    context = replace(context, table=replace(context.table, sampled=True, sample_seed=7))
    sampled = build_report_html(context)
    assert "random sample of 30 of 1,000 rows (seed 7)" in sampled and "the first 30" not in sampled


def test_report_model_plots_are_drawn_once_per_model(monkeypatch):
    """Scoring many files with one model draws its curves and test confusion matrix once; another
    model's history gets its own drawing."""
    from review_scorer.report import plots
    from review_scorer.report import sections as report_module

    drawn = {"curves": 0, "confusion": 0}
    real_curves, real_confusion = plots.training_curves_svg, plots.confusion_matrix_svg

    def curves(*args):
        drawn["curves"] += 1
        return real_curves(*args)

    def confusion(*args):
        drawn["confusion"] += 1
        return real_confusion(*args)

    monkeypatch.setattr(plots, "training_curves_svg", curves)
    monkeypatch.setattr(plots, "confusion_matrix_svg", confusion)
    report_module._cached_model_plot.cache_clear()
    first = make_model(epochs=4)
    views = [report_module._model_view(first) for _ in range(3)]
    assert drawn == {"curves": 1, "confusion": 1}
    assert len({str(v["curves_svg"]) for v in views}) == 1 and "<svg" in str(views[0]["curves_svg"])
    other = report_module._model_view(make_model(epochs=5))
    assert drawn == {"curves": 2, "confusion": 1}  # same test metrics, new history
    assert str(other["curves_svg"]) != str(views[0]["curves_svg"])
