"""The Ray-free half of the ray engine: inputs, part files, the driver's reduction, actor planning."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from review_scorer.errors import InputError, OutputError
from review_scorer.io import part_files as storage
from review_scorer.metrics import DecisionRule
from review_scorer.scoring.engines import inputs, parts
from review_scorer.scoring.score import ScoreOptions
from tests.conftest import require


def test_engine_parts_expand_inputs_folders_globs_and_files(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/b.csv", "d/a.jsonl", "d/sub/c.parquet", "d/notes.md", "d/.hidden.csv", "e.tsv"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    folder = inputs.expand_inputs([tmp_path / "d"])
    assert folder == [str(tmp_path / p) for p in ("d/a.jsonl", "d/b.csv", "d/sub/c.parquet")]
    # a glob, a file named twice, and a missing file (left to its reader's own error)
    got = inputs.expand_inputs([str(tmp_path / "d" / "*.csv"), tmp_path / "e.tsv",
                               tmp_path / "e.tsv", tmp_path / "missing.csv"])
    assert got == [str(tmp_path / "d/b.csv"), str(tmp_path / "e.tsv"), str(tmp_path / "missing.csv")]
    with pytest.raises(InputError, match="no files match"):
        inputs.expand_inputs([str(tmp_path / "*.xlsx")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no review files in this folder"):
        inputs.expand_inputs([tmp_path / "empty"])


def test_engine_parts_run_name_is_safe():
    assert inputs.run_name(["data/reviews/"]) == "reviews"
    assert inputs.run_name(["shop reviews.csv"]) == "shop_reviews"
    assert inputs.run_name(["s3://bucket/in/*.parquet"]) == "reviews"
    assert inputs.run_name(["a.csv", "b.csv", "c.csv"]) == "a-and-2-more"


def _chunk(source: str, first: int, n: int) -> inputs.PartChunk:
    """A scored chunk of `source` as the ray stages carry it (scored by the kernel, scores
    made up): its first row is an empty text."""
    from review_scorer.io.reviews import ReviewChunk
    from review_scorer.scoring.kernel import scored_chunk

    rows = np.arange(first, first + n, dtype=np.int64)
    frame = pd.DataFrame({"review": [f"text {i}" for i in rows], "row": ["x"] * n})
    scores = np.linspace(0.1, 0.9, n).astype(np.float32)
    status = np.array(["ok"] * n, dtype=object)
    status[0] = "empty text"
    scores[0] = np.nan
    read = ReviewChunk(frame, rows, frame["review"].tolist(), np.ones(n, np.int8))
    return inputs.PartChunk(source, {"row": "row_original"}, (None,) * 5,
                            scored=scored_chunk(read, status, scores, DecisionRule(0.5)))


def _frame(part: inputs.PartChunk):
    from review_scorer.scoring.kernel import prediction_frame

    return prediction_frame(part.scored, part.rename, source=part.source)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_engine_parts_a_retried_chunk_overwrites_its_own_part(tmp_path, fmt):
    chunk = _chunk("in.csv", 11, 5)
    frame = _frame(chunk)
    assert list(frame.columns) == ["source_file", "review", "row_original", "row", "sentiment",
                                   "score", "status"]
    target = tmp_path / storage.part_name(3, 11, fmt)
    storage.write_part(frame, target, fmt)
    storage.write_part(frame, target, fmt)  # the retry
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"part-000003-000000000011.{fmt}"]
    back = storage.read_part(target, fmt, ["review", "row", "score", "status"])
    assert back["row"].astype(int).tolist() == list(range(11, 16))
    assert back["status"].tolist()[0] == "empty text"


def _summary(settings, file_index, chunk):
    return pickle.dumps(parts.summarise_chunk(file_index, chunk, settings, node="n"))


def test_engine_parts_collector_counts_each_chunk_once_and_checks_completeness(tmp_path):
    settings = parts.WriteSettings(str(tmp_path), "parquet", 0.5, 10, 0)
    collector = parts.Collector(["a.csv", "b.csv"], settings)
    first, second = _chunk("a.csv", 1, 4), _chunk("a.csv", 5, 3)
    end = pickle.dumps({"rows": 7, "columns": {"text_column": "review", "label_column": "label"},
                        "notes": [], "part_columns": {"text": "review"}})
    collector.add(inputs.KIND_CHUNK, 0, 1, _summary(settings, 0, first))
    collector.add(inputs.KIND_END, 0, 8, end)
    assert not collector.states[0].result.ok  # rows 5-7 still missing
    collector.add(inputs.KIND_CHUNK, 0, 5, _summary(settings, 0, second))
    collector.add(inputs.KIND_CHUNK, 0, 5, _summary(settings, 0, second))  # a duplicate delivery
    (tmp_path / storage.part_name(1, 1, "parquet")).write_text("stale")
    collector.add(inputs.KIND_ERROR, 1, -1, pickle.dumps({"error": "b.csv: bad", "exit_code": 2}))
    collector.close()
    a, b = (s.result for s in collector.states)
    assert (a.ok, a.rows, a.scored, a.not_scored) == (True, 7, 5, {"empty text": 2})
    assert (b.ok, b.error, b.exit_code) == (False, "b.csv: bad", 2)
    assert not list(tmp_path.glob("part-000001-*"))  # a failed file leaves no parts
    assert collector.streaming.n_rows == 7 and len(collector.sample) == 7


def test_engine_parts_prepare_outputs_refuses_an_earlier_runs_parts(tmp_path):
    first = storage.prepare_outputs(tmp_path, "run", ScoreOptions())
    (first.staging / "part-000000-000000000001.parquet").write_text("old")
    storage.publish_outputs(first, None)
    assert first.final == tmp_path / "run.predictions" and first.report == tmp_path / "run.html"
    assert not first.staging.exists()
    with pytest.raises(OutputError, match="already holds predictions"):
        storage.prepare_outputs(tmp_path, "run", ScoreOptions())
    again = storage.prepare_outputs(tmp_path, "run", ScoreOptions(overwrite=True))
    # the earlier parts stay until the new run is published
    assert (first.final / "part-000000-000000000001.parquet").read_text() == "old"
    (again.staging / "part-000000-000000000001.parquet").write_text("new")
    storage.publish_outputs(again, None)
    assert (first.final / "part-000000-000000000001.parquet").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.predictions"]


@pytest.mark.parametrize("uri", [False, True])
def test_engine_parts_failed_report_puts_the_earlier_parts_back(tmp_path, uri):
    base = f"file://{tmp_path}" if uri else tmp_path
    old = storage.prepare_outputs(base, "run", ScoreOptions())
    staged = tmp_path / storage.base_name(old.staging)
    (staged / "part-000000-000000000001.csv").write_text("old")
    storage.publish_outputs(old, None)
    before = {p.name: p.read_bytes() for p in (tmp_path / "run.predictions").iterdir()}
    new = storage.prepare_outputs(base, "run", ScoreOptions(overwrite=True))
    (tmp_path / storage.base_name(new.staging) / "part-000000-000000000009.csv").write_text("new")

    def failing_report():
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        storage.publish_outputs(new, failing_report)
    after = {p.name: p.read_bytes() for p in (tmp_path / "run.predictions").iterdir()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.predictions"]


def test_engine_parts_refuses_an_input_inside_its_outputs(tmp_path):
    folder = tmp_path / "run.predictions"
    folder.mkdir()
    inside = folder / "part-000000-000000000001.parquet"
    inside.write_text("someone's input")
    for given in ([str(inside)], [str(tmp_path / "x.csv"), str(tmp_path / "run.html")]):
        with pytest.raises(OutputError, match="also an output of this run"):
            storage.prepare_outputs(tmp_path, "run", ScoreOptions(overwrite=True), given)
    assert inside.read_text() == "someone's input"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.predictions"]


def test_engine_parts_excel_safe_csv_parts_neutralise_headers_and_cells(tmp_path):
    frame = pd.DataFrame({"=HYPERLINK(\"http://x\")": ["+cmd|' /C calc'!A0"], "plain": ["ok"]})
    storage.write_part(frame, tmp_path / "p.csv", "csv", excel_safe=True)
    back = pd.read_csv(tmp_path / "p.csv", dtype=str)
    assert list(back.columns) == ["'=HYPERLINK(\"http://x\")", "plain"]
    assert back.iloc[0].tolist() == ["'+cmd|' /C calc'!A0", "ok"]


def test_engine_parts_actor_plan_leaves_room_for_the_cpu_stages():
    require("ray")  # skipped without Ray, except under CI; an error in our own module fails
    from review_scorer.scoring.engines import ray as ray_engine

    plan = ray_engine.plan_actors({"CPU": 16.0}, actors=None, device="auto", cpus_per_task=0.5)
    assert (plan.actors, plan.cpus, plan.gpus) == (8, 1.0, 0.0)
    plan = ray_engine.plan_actors({"CPU": 2.0}, actors=2, device="auto", cpus_per_task=0.5)
    assert plan.actors == 2 and 2 * plan.cpus + 2.5 * 0.5 <= 2.0
    plan = ray_engine.plan_actors({"CPU": 32.0, "GPU": 4.0}, actors=None, device="auto",
                                  cpus_per_task=0.5)
    assert (plan.actors, plan.gpus) == (4, 1.0)
    assert ray_engine.plan_actors({"CPU": 8.0, "GPU": 2.0}, actors=None, device="cpu",
                                  cpus_per_task=0.5).gpus == 0.0
    from review_scorer.errors import DeviceError

    with pytest.raises(DeviceError):
        ray_engine.plan_actors({"CPU": 8.0}, actors=None, device="gpu", cpus_per_task=0.5)


def test_engine_parts_importing_the_engines_loads_neither_ray_nor_tensorflow():
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("import sys, review_scorer.scoring.engines, review_scorer.scoring.engines.parts\n"
            "print(sorted(m for m in ('ray', 'tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         timeout=120, check=True).stdout.strip()
    assert out == "[]"


def test_engine_parts_uris_are_listed_and_read_through_pyarrow(tmp_path):
    # file:// goes through the same pyarrow filesystem code as s3:// or gs://
    (tmp_path / "in").mkdir()
    pd.DataFrame({"review": ["good film", "", "bad film"]}).to_csv(tmp_path / "in/a.csv", index=False)
    (tmp_path / "in/readme.md").write_text("not reviews", encoding="utf-8")
    uri = f"file://{tmp_path}/in"
    assert inputs.expand_inputs([uri]) == [f"file://{tmp_path}/in/a.csv"]
    assert inputs.expand_inputs([f"{uri}/*.csv"]) == [f"file://{tmp_path}/in/a.csv"]
    got = list(inputs.read_file_chunks(f"{uri}/a.csv", ScoreOptions()))
    assert [kind for kind, _, _ in got] == [inputs.KIND_CHUNK, inputs.KIND_END]
    assert got[0][2].read.texts[::2] == ["good film", "bad film"] and got[1][2]["rows"] == 3
    kind, _, error = next(inputs.read_file_chunks(f"{uri}/missing.csv", ScoreOptions()))
    assert kind == inputs.KIND_ERROR and error["exit_code"] == 2 and "missing.csv" in error["error"]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_engine_parts_outputs_to_a_uri(tmp_path, fmt):
    out = f"file://{tmp_path}/reports"
    outputs = storage.prepare_outputs(out, "run", ScoreOptions())
    assert (outputs.final, outputs.report) == (f"{out}/run.predictions", f"{out}/run.html")
    chunk = _chunk("in.csv", 1, 4)
    target = storage.join(outputs.staging, storage.part_name(0, 1, fmt))
    storage.write_part(_frame(chunk), target, fmt)
    storage.write_part(_frame(chunk), target, fmt)
    storage.publish_outputs(outputs, None)
    parts_dir = outputs.final
    target = storage.join(parts_dir, storage.part_name(0, 1, fmt))
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["run.predictions"]
    assert [p.name for p in (tmp_path / "reports/run.predictions").iterdir()] == [
        f"part-000000-000000000001.{fmt}"]
    back = storage.read_part(target, fmt, ["row", "status"])
    assert back["row"].astype(int).tolist() == [1, 2, 3, 4]
    with pytest.raises(OutputError, match="already holds predictions"):
        storage.prepare_outputs(out, "run", ScoreOptions())
    storage.remove_parts(parts_dir, 0)
    assert not list((tmp_path / "reports/run.predictions").iterdir())


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_engine_parts_report_sample_is_read_back_from_the_parts(tmp_path, fmt):
    settings = parts.WriteSettings(str(tmp_path), fmt, 0.5, 5, 3)
    collector = parts.Collector(["a.csv"], settings)
    for first, n in ((1, 4), (5, 3)):
        chunk = _chunk("a.csv", first, n)
        frame = _frame(chunk)
        storage.write_part(frame, tmp_path / storage.part_name(0, first, fmt), fmt)
        collector.add(inputs.KIND_CHUNK, 0, first, _summary(settings, 0, chunk))
    collector.add(inputs.KIND_END, 0, 8, pickle.dumps({
        "rows": 7, "columns": {"text_column": "review", "label_column": "label"}, "notes": [],
        "part_columns": {"text": "review"}}))
    rows = parts.sampled_rows(collector, settings)
    assert len(rows) == 5 and [r["row"] for r in rows] == sorted(r["row"] for r in rows)
    for r in rows:
        assert r["text"] == f"text {r['row']}" and r["source_file"] == "a.csv"
        assert r["label"] == "positive"
        if r["row"] in (1, 5):  # each chunk's first row is "empty text" in _chunk
            assert (r["status"], r["score"], r["sentiment"]) == ("empty text", None, "")
        else:
            assert r["status"] == "ok" and 0 <= r["score"] <= 1
            assert r["sentiment"] == ("positive" if r["score"] >= 0.5 else "negative")


def test_engine_parts_uris_flattened_by_pathlib_get_their_slashes_back(tmp_path):
    from pathlib import Path

    assert storage.restore_uri(Path("s3://bucket/in/a.parquet")) == "s3://bucket/in/a.parquet"
    assert storage.restore_uri(str(Path("gs://bucket/x"))) == "gs://bucket/x"
    assert storage.restore_uri(Path(f"file://{tmp_path}")) == f"file://{tmp_path}"
    assert storage.restore_uri(Path("C:/data/x.csv")) == str(Path("C:/data/x.csv"))
    assert storage.restore_uri(tmp_path / "x.csv") == str(tmp_path / "x.csv")


def _made_up_scores(read, rule: DecisionRule):
    """The reader's chunk scored without a model: a score from each text's length."""
    from review_scorer.scoring.kernel import scored_chunk

    texts = ["" if t is None else str(t) for t in read.texts]
    status = np.array(["ok" if t.strip() else "empty text" for t in texts], dtype=object)
    scores = np.array([(len(t) * 7919 % 1000) / 1000 for t in texts], dtype=np.float32)
    scores[status != "ok"] = np.nan
    return scored_chunk(read, status, scores, rule)


def _without_sources(rows) -> list:
    from review_scorer.scoring.kernel import SOURCE_COLUMN

    return [{k: v for k, v in row.items() if k != SOURCE_COLUMN} for row in rows]


def _settled(report):
    """A ScoreReport less what says how its run went rather than what the file holds: when it
    ran, how long it took, its notes, how its table was chosen and which file each row is from."""
    from dataclasses import replace

    return replace(
        report, generated_at="",
        summary=replace(report.summary, seconds=0.0, rows_per_second=0.0, notes=()),
        table=replace(report.table, rows=tuple(_without_sources(report.table.rows)),
                      max_rows=0, sampled=False, sample_seed=None),
        highlights={k: _without_sources(v) for k, v in report.highlights.items()})


def test_engine_parts_both_engines_build_the_same_report(tmp_path):
    """The same scored chunks of a file with labels, dates, products and star ratings make the
    same ScoreReport through the local engine's sinks as through the ray engine's chunk
    summaries, part files and driver-side reduction (everything but the cluster)."""
    import contextlib
    from pathlib import Path

    from review_scorer.scoring.kernel import RowCounts, add_counts, open_review_file
    from review_scorer.scoring.results import FileResult
    from review_scorer.scoring.sinks import ReportAccumulator
    from tests.conftest import SAMPLE_DATA

    source = str(SAMPLE_DATA / "shop_reviews.csv")
    options = ScoreOptions(chunk_rows=7, threshold=0.55, neutral_band=(0.45, 0.5),
                           group_column="product")
    items = list(inputs.read_file_chunks(source, options))
    chunks = [(first, part) for kind, first, part in items if kind == inputs.KIND_CHUNK]
    (end,) = [payload for kind, _, payload in items if kind == inputs.KIND_END]
    for _, part in chunks:
        part.scored = _made_up_scores(part.read, options.rule)
    _, model = parts.load_model_payload(None, [])  # the shipped model, for the model section

    # the local engine: the report sink folds every chunk
    with contextlib.closing(open_review_file(source, options)) as review_file:
        accumulator = ReportAccumulator(review_file.info, options)
    result = FileResult(path=Path(source), ok=True, seconds=1.0)
    for name, value in end["columns"].items():
        setattr(result, name, value)
    for _, part in chunks:
        accumulator.update(part.scored)
        add_counts(result, RowCounts.of(part.scored))
    result.notes.extend(end["notes"])
    result.metrics, result.domain = accumulator.metrics(), accumulator.domain.to_dict()
    local = accumulator.report(result, model=model, device_name="CPU")

    # the ray engine: a summary per chunk, each chunk's part file, the driver's reduction
    settings = parts.WriteSettings(str(tmp_path), "parquet", options.threshold, end["rows"], 5,
                                   neutral_band=options.neutral_band)
    collector = parts.Collector([source], settings, None)
    for first, part in chunks:
        storage.write_part(_frame(part), tmp_path / storage.part_name(0, first, "parquet"),
                           "parquet")
        collector.add(inputs.KIND_CHUNK, 0, first, _summary(settings, 0, part))
    collector.add(inputs.KIND_END, 0, end["rows"] + 1, pickle.dumps(end))
    collector.close()
    summary = parts.run_summary("shop_reviews", [source], collector, 1.0, [])
    ray = parts.run_report(summary, collector, model=model, device_name="CPU", settings=settings,
                           rows=parts.sampled_rows(collector, settings),
                           highlights=collector.summaries.highlights.result())

    assert local.timeline and local.groups and local.ratings and local.file_metrics
    assert local.summary.neutral and local.table.rows and local.highlights["uncertain"]
    assert _settled(ray) == _settled(local)
    # what differs says how the ray run chose its table; its rows name their file, by name
    assert (local.table.sampled, ray.table.sampled, ray.table.sample_seed) == (False, True, 5)
    assert ray.summary.notes[:-1] == local.summary.notes
    assert "random sample of" in ray.summary.notes[-1]
    assert {row["source_file"] for row in ray.table.rows} == {"shop_reviews.csv"}
