"""The Ray-free half of a partitioned run: each scored chunk's summary, their reduction on the
driver, and the run's report.

The ray engine (engines/ray.py) moves chunks between processes and calls the scoring kernel
(scoring/kernel.py) on them; everything here works on one chunk's summary or on the driver's
reduction, so it runs (and is tested) without a cluster.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from review_scorer.io.part_files import (
    is_uri,
    join,
    part_name,
    read_part,
    remove_parts,
)
from review_scorer.metrics import DecisionRule, RowSample
from review_scorer.model.sentiment import STATUS_OK, SentimentModel
from review_scorer.report.data import Drivers, Highlights, ReportRow, ScoreReport
from review_scorer.scoring.domain import DomainReference
from review_scorer.scoring.engines.inputs import KIND_END, KIND_ERROR, PartChunk
from review_scorer.scoring.kernel import SOURCE_COLUMN, RowCounts, add_counts, table_row
from review_scorer.scoring.results import FileResult
from review_scorer.scoring.score_report import build_score_report
from review_scorer.scoring.summaries import Summaries

SAMPLE_READERS = 16  # parts read at once when the report's sample is fetched
NO_ROLES = (None,) * 5  # insight roles of a file whose reader never said


@dataclass(frozen=True)
class WriteSettings:
    """What the write tasks need to know: where parts go and how the report samples rows."""

    parts_dir: str
    part_format: str
    threshold: float
    sample_rows: int
    seed: int
    excel_safe: bool = False  # --excel-safe-csv: CSV parts get formula cells neutralised
    neutral_band: tuple[float, float] | None = None
    # what the out-of-domain check compares files with (the scoring model's meta.json)
    domain_reference: DomainReference = field(default_factory=DomainReference)

    @property
    def rule(self) -> DecisionRule:
        return DecisionRule(self.threshold, self.neutral_band)


@dataclass
class ChunkSummary:
    """One scored chunk's share of the run: its counts, its mergeable summaries and its
    candidates for the report's sample, and where it was scored."""

    counts: RowCounts
    summaries: Summaries
    sample: RowSample
    device: str | None = None
    actor_pid: int | None = None
    nodes: set = field(default_factory=set)


def summarise_chunk(file_index: int, part: PartChunk, settings: WriteSettings, *,
                    node: str | None = None) -> ChunkSummary:
    """The chunk's summary, folded as the local engine folds a chunk (summaries.Summaries)."""
    chunk = part.scored
    summaries = Summaries(settings.rule, part.roles)
    summaries.update(chunk, source=part.source, source_rank=file_index)
    sample = RowSample(settings.sample_rows, seed=settings.seed)
    sample.update(chunk.rows, source_rank=file_index, labels=chunk.label_codes())
    return ChunkSummary(RowCounts.of(chunk), summaries, sample, part.device, part.actor_pid,
                        {part.actor_node, node})


def load_model_payload(model_path: str | Path | None, notes: list[str]
                       ) -> tuple[dict[str, bytes], SentimentModel]:
    """The model directory's files (sent to every actor, so nodes need no copy of it) and the
    model without its network (no TensorFlow) for encoding and the report, checked as `score`
    checks it."""
    from review_scorer.model.artifacts import REPORT_FILE, resolve_model_dir

    model = SentimentModel.load(resolve_model_dir(model_path, notes=notes), network=False)
    files = {p.name: p.read_bytes() for p in sorted(model.path.iterdir())
             if p.is_file() and not p.name.startswith(".") and p.name != REPORT_FILE}
    return files, model


# ------------------------------------------------------------------------------ the driver


class FileState:
    """One input file on the driver: its chunks' summaries folded in as they arrive."""

    def __init__(self, index: int, path: str, settings: WriteSettings):
        self.index, self.path, self.rule = index, path, settings.rule
        self.reference = settings.domain_reference
        # a URI stays text: pathlib would fold its "//"
        self.result = FileResult(path=path if is_uri(path) else Path(path), ok=False)
        self.chunks: dict[int, int] = {}  # first row -> rows, for the completeness check
        self.end: dict[str, Any] | None = None
        self.summaries: Summaries | None = None  # the first chunk's, the others merged in
        self.sample = RowSample(settings.sample_rows, seed=settings.seed)
        self.failed = False

    def add_chunk(self, first_row: int, summary: ChunkSummary) -> bool:
        """Fold in one chunk; False for a chunk already counted (a retried task's copy)."""
        if self.failed or first_row in self.chunks:
            return False
        self.chunks[first_row] = summary.counts.rows
        add_counts(self.result, summary.counts)
        self.summaries = (summary.summaries if self.summaries is None
                          else self.summaries.merge(summary.summaries))
        self.sample.merge(summary.sample)
        return True

    def fail(self, error: str, exit_code: int) -> None:
        """Record the file as failed; its later chunks are ignored and its parts removed."""
        self.failed = True
        self.result.error, self.result.exit_code = error, exit_code

    def complete(self) -> bool:
        """True once the end marker came and the chunks cover rows 1..N exactly once."""
        if self.end is None or self.failed or self.result.rows != self.end["rows"]:
            return False
        expected = 1
        for first in sorted(self.chunks):
            if first != expected:
                return False
            expected += self.chunks[first]
        return expected == self.end["rows"] + 1

    def finish(self) -> None:
        """Fill in the file's result once every row is accounted for (complete())."""
        r, end = self.result, self.end
        r.ok = True
        for name, value in end["columns"].items():  # as kernel.file_columns said
            setattr(r, name, value)
        r.notes.extend(end["notes"])
        if self.summaries is None:  # a file without rows
            self.summaries = Summaries(self.rule, end["roles"])
        r.metrics = self.summaries.metrics(bool(r.label_column))
        r.domain = self.summaries.domain.to_dict(self.reference)


class Collector:
    """Reduces the stream of chunk summaries into per-file results and the run's report parts."""

    def __init__(self, files: Sequence[str], settings: WriteSettings,
                 progress: Callable[[int], None] | None = None):
        self.states = [FileState(i, p, settings) for i, p in enumerate(files)]
        self.settings, self.progress = settings, progress
        self.summaries = Summaries(settings.rule, NO_ROLES)  # the first finished file's, later
        self.folded = 0  # files folded into the run's summaries
        # The time/group/rating sections cover the run while its files share those columns.
        self.insights_shared = True
        self.sample = RowSample(settings.sample_rows, seed=settings.seed)
        self.devices: Counter[str] = Counter()
        self.actor_pids: set[int] = set()
        self.nodes: set[str] = set()

    @property
    def streaming(self) -> Any:
        return self.summaries.streaming

    def add(self, kind: str, file_index: int, first_row: int, data: bytes) -> None:
        """Fold in one row of the dataset's output: a chunk summary, an end or an error marker."""
        import pickle

        state = self.states[file_index]
        payload = pickle.loads(data)
        if kind == KIND_ERROR:
            state.fail(payload["error"], int(payload["exit_code"]))
        elif kind == KIND_END:
            state.end = payload
        elif state.add_chunk(first_row, payload):
            self.devices[str(payload.device)] += payload.counts.rows
            if payload.actor_pid is not None:
                self.actor_pids.add(int(payload.actor_pid))
            self.nodes.update(n for n in payload.nodes if n)
            if self.progress is not None:
                self.progress(payload.counts.rows)
        if kind != KIND_ERROR and state.complete() and not state.result.ok:
            self._fold(state)

    def _fold(self, state: FileState) -> None:
        state.finish()
        self.sample.merge(state.sample)
        if self.folded == 0:
            self.summaries = state.summaries
        else:
            self.insights_shared &= state.summaries.roles == self.summaries.roles
            self.summaries.merge(state.summaries, insights=self.insights_shared)
        self.folded += 1
        # What the file's accumulators held now lives in the run's; keep only its counts.
        state.summaries = state.sample = None  # type: ignore[assignment]

    def close(self) -> None:
        """After the last summary: a file neither finished nor failed lost rows (never expected)."""
        for state in self.states:
            if not state.result.ok and not state.failed:
                state.fail(f"{state.path}: the cluster returned {state.result.rows} rows of this "
                           "file but not all of them; run it again", 1)
            if state.failed:
                remove_parts(self.settings.parts_dir, state.index)


# ------------------------------------------------------------------------------ the report


def sampled_rows(collector: Collector, settings: WriteSettings) -> list[dict[str, Any]]:
    """The report table's rows: the run's seeded sample, read back from the written parts."""
    wanted: dict[tuple[int, int], list[tuple[int, int]]] = {}
    firsts: dict[int, list[int]] = {}  # each file's chunk starts, sorted once
    for rank, row, label in collector.sample.rows():
        if rank not in firsts:
            firsts[rank] = sorted(collector.states[rank].chunks)
        first = firsts[rank][bisect.bisect_right(firsts[rank], row) - 1]
        wanted.setdefault((rank, first), []).append((row, label))
    # One read per part that holds sampled rows, a few at a time: on object storage each is a
    # round trip, and a big run's sample touches thousands of parts.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=SAMPLE_READERS) as pool:
        groups = pool.map(lambda item: _sampled_from_part(collector, settings, *item),
                          sorted(wanted.items()))
        return [row for group in groups for row in group]


def _sampled_from_part(collector: Collector, settings: WriteSettings, key: tuple[int, int],
                       rows: list[tuple[int, int]]) -> list[dict[str, Any]]:
    rank, first = key
    roles = collector.states[rank].end["part_columns"]
    columns = ["row", "sentiment", "score", "status", *roles.values()]
    part = join(settings.parts_dir, part_name(rank, first, settings.part_format))
    frame = read_part(part, settings.part_format, list(dict.fromkeys(columns)))
    frame = frame.set_index(frame["row"].astype(np.int64))
    source = collector.states[rank].path
    return [_report_row(frame.loc[row], source, roles, label) for row, label in rows]


def _report_row(values: Any, source: str, roles: dict[str, str], label: int) -> dict[str, Any]:
    """One table row as the local engine makes it (kernel.table_row), read back from a part."""
    rating = None
    if "rating" in roles:
        from review_scorer.io.labels import parse_ratings

        rating = parse_ratings([values[roles["rating"]]])[0]
    row = table_row(row=values["row"], id_=values[roles["id"]] if "id" in roles else None,
                    text=values[roles["text"]], sentiment=values["sentiment"],
                    score=values["score"], status=values["status"], label=label,
                    group=values[roles["group"]] if "group" in roles else None, rating=rating)
    row[SOURCE_COLUMN] = source
    return row


def run_summary(name: str, inputs: Sequence[str], collector: Collector, seconds: float,
                notes: list[str]) -> FileResult:
    """The whole run as one FileResult-shaped summary, for the report's header and counts."""
    done = [s.result for s in collector.states if s.result.ok]
    total = FileResult(path=Path(str(inputs[0]) if len(inputs) == 1 else name), ok=True)
    for r in done:
        add_counts(total, r)
    total.domain = collector.summaries.domain.to_dict(collector.settings.domain_reference)
    total.seconds = seconds
    total.text_column = ", ".join(dict.fromkeys(r.text_column for r in done if r.text_column))
    total.label_column = ", ".join(dict.fromkeys(r.label_column for r in done if r.label_column)) or None
    total.metrics = collector.summaries.metrics(bool(total.label_column))
    # the files' own notes too, as the local report has them (named when there are several)
    total.notes = notes + [note if len(done) == 1 else f"{Path(str(r.path)).name}: {note}"
                           for r in done for note in r.notes]
    return total


def attach_attributions(rows: list[dict[str, Any]], highlight_rows: list[dict[str, Any]],
                        attributions: Sequence[Any]) -> dict[str, Any] | None:
    """Add word spans to the table and highlight rows (attributions in that order, table rows
    first) and return the drivers over the table rows, as the local report has them."""
    from review_scorer.explain.drivers import DriverAccumulator, TermMatcher, cleaned_if_whole, row_spans

    drivers = DriverAccumulator()
    drivers.update(a for a, row in zip(attributions, rows) if row["status"] == STATUS_OK)
    for row, attribution in zip([*rows, *highlight_rows], attributions):
        if attribution is not None:
            row["spans"] = row_spans(attribution)
    if not drivers.reviews:
        return None
    result = drivers.result(k=15)
    terms = [t["term"] for t in result["positive"] + result["negative"]]
    matcher = TermMatcher(terms)
    for row, attribution in zip(rows, attributions):
        row["terms"] = matcher(row["text"], cleaned=cleaned_if_whole(attribution))
    return result


def run_report(summary: FileResult, collector: Collector, *, model: SentimentModel,
               device_name: str, settings: WriteSettings, rows: list[ReportRow],
               highlights: Highlights, drivers: Drivers | None = None,
               full_paths: bool = False) -> ScoreReport:
    """The report of a ray run (score_report.build_score_report, as the local engine's): exact
    counts, metrics, histogram and highlights merged from every partition; the table a seeded
    sample, which the page says. Unless full_paths, input files are named by their names only."""
    summary.notes.append(
        f"The review table shows a random sample of {len(rows):,} of {summary.rows:,} rows "
        f"(seed {settings.seed}); counts, metrics, the histogram and the highlights cover every "
        "row, and the predictions folder holds them all.")
    if not collector.insights_shared:
        summary.notes.append("The time, group and rating sections are left out: the input files "
                             "do not share their date, group and rating columns.")
    shared = collector.insights_shared and collector.folded
    return build_score_report(summary, model=model, device_name=device_name,
                              rule=settings.rule, histogram=collector.streaming.histogram(),
                              highlights=highlights, rows=rows, max_rows=settings.sample_rows,
                              drivers=drivers,
                              insights=collector.summaries.insights.context() if shared else None,
                              sample_seed=settings.seed, full_paths=full_paths)
