"""The ray engine on real Ray: same rows and scores as the local engine, a two-node cluster, a
killed model actor, and the one-line errors (missing extra, unreachable cluster)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import MINI_IMDB, REPO, require

ray = require("ray")

pytestmark = pytest.mark.slow

EXTRA_ROWS = ["", "   ", "--- ...", "<br /><br />"]  # empty text, empty text, no words, no words


def _mini_texts() -> list[str]:
    files = sorted(MINI_IMDB.glob("*/*/*.txt"))
    return [f.read_text(encoding="utf-8") for f in files]


def _frame(n: int, offset: int) -> pd.DataFrame:
    texts = _mini_texts()
    rows = []
    for i in range(n):
        k = i + offset
        text = EXTRA_ROWS[k % len(EXTRA_ROWS)] if k % 37 == 0 else texts[k % len(texts)]
        label = ("pos", "neg", "")[k % 3]
        rows.append({"id": f"r{k}", "review": text, "label": label})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def review_inputs(tmp_path_factory) -> Path:
    """A folder of about 3,000 reviews in CSV, JSONL and Parquet files."""
    folder = tmp_path_factory.mktemp("ray-inputs")
    _frame(1200, 0).to_csv(folder / "a.csv", index=False)
    _frame(900, 5000).to_json(folder / "b.jsonl", orient="records", lines=True)
    _frame(1000, 9000).to_parquet(folder / "c.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module; stopped (with every process it started) at the end."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=300 * 2**20)
    try:
        yield
    finally:
        ray.shutdown()


def _options(**kw):
    from review_scorer.scoring.score import ScoreOptions

    return ScoreOptions(chunk_rows=kw.pop("chunk_rows", 250), **kw)


def _read_parts(folder: Path) -> pd.DataFrame:
    parts = sorted(folder.glob("part-*.parquet"))
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    return frame.sort_values(["source_file", "row"], kind="stable").reset_index(drop=True)


def test_ray_engine_matches_local_engine_rows_statuses_scores_and_counts(
        local_ray, review_inputs, trained_model, tmp_path):
    from review_scorer.scoring.engines import score_with_ray
    from review_scorer.scoring.score import score_files

    bad = review_inputs.parent / "with-bad"
    bad.mkdir(exist_ok=True)
    for f in review_inputs.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "broken.csv").write_text('id,review\n1,"never closed\n2,fine\n', encoding="utf-8")
    # star ratings as labels, dates and products: the report's time/group/rating sections
    (bad / "shop.csv").write_bytes((REPO / "sample_data" / "shop_reviews.csv").read_bytes())
    files = sorted(str(p) for p in bad.iterdir())

    # a neutral band around the tiny model's scores, so the "neutral" rows are compared too
    band = (0.45, 0.5)
    local = score_files(files, model_dir=trained_model.model_dir, out_dir=tmp_path / "local",
                        options=_options(fmt="csv", neutral_band=band))
    result = score_with_ray([str(bad)], model_path=trained_model.model_dir,
                            out_dir=tmp_path / "ray", options=_options(neutral_band=band))

    by_name = {Path(f.path).name: f for f in local.files}
    assert [Path(f.path).name for f in result.files] == sorted(by_name)
    for got in result.files:
        want = by_name[Path(got.path).name]
        assert (got.ok, got.error, got.exit_code) == (want.ok, want.error, want.exit_code)
        assert (got.rows, got.scored, got.positive, got.neutral, got.not_scored) == (
            want.rows, want.scored, want.positive, want.neutral, want.not_scored)
        if got.ok:
            # counted alike, and judged against the same reference (the model's own rate)
            keys = ("words", "unknown_words", "unknown_rate_limit", "model_unknown_rate", "note")
            assert [got.domain[k] for k in keys] == [want.domain[k] for k in keys]
            assert got.domain["model_unknown_rate"] is not None
        assert (got.label_column, got.labels_from_rating) == (want.label_column,
                                                              want.labels_from_rating)
        if want.metrics:
            assert got.metrics["confusion"] == want.metrics["confusion"]
            assert got.metrics["roc_auc"] == pytest.approx(want.metrics["roc_auc"], abs=1e-9)
    broken = next(f for f in result.files if Path(f.path).name == "broken.csv")
    assert not broken.ok and broken.exit_code == 2 and "broken.csv" in broken.error

    parts = _read_parts(result.predictions_dir)
    assert not parts.duplicated(["source_file", "row"]).any()
    assert not parts["source_file"].str.endswith("broken.csv").any()  # a failed file leaves no rows
    for got in result.files:
        if not got.ok:
            continue
        mine = parts[parts["source_file"] == str(got.path)].reset_index(drop=True)
        theirs = pd.read_csv(by_name[Path(got.path).name].predictions_path, dtype=str,
                             keep_default_na=False)
        assert mine["row"].tolist() == list(range(1, len(theirs) + 1))
        assert mine["row"].astype(str).tolist() == theirs["row"].tolist()
        for column in theirs.columns.drop("score"):
            assert mine[column].astype(str).tolist() == theirs[column].tolist(), column
        local_scores = pd.to_numeric(theirs["score"]).to_numpy()
        assert np.array_equal(np.isnan(mine["score"].to_numpy()), np.isnan(local_scores))
        np.testing.assert_allclose(mine["score"].to_numpy(), local_scores, atol=1e-5)
        if "review" in theirs:
            assert set(mine["status"]) == {"ok", "empty text", "no words"}
            assert "neutral" in set(mine["sentiment"])

    html = result.report_path.read_text(encoding="utf-8")
    assert "do not share their date, group and rating columns" in html
    assert 'id="drivers"' in html  # word attributions of the sampled rows, as the local report
    assert "random sample" in html and f"{sum(f.rows for f in local.files if f.ok):,}" in html
    assert result.report_path.name == "with-bad.html" and result.actors >= 1


def test_ray_engine_scores_an_adapted_model_with_its_ngram_head_as_the_local_engine(
        local_ray, review_inputs, trained_model, tmp_path):
    """A model adapted to a user's labels carries an n-gram head (here with the lexicon term),
    a lexicon term on the network's logit and clause rules: the Ray actors load them all from the
    model directory and score as the local engine does, and they really move the scores away
    from the network's own."""
    from review_scorer.model.clauses import ClauseRules
    from review_scorer.model.lexicon import LexiconTerm, lexicon_arrays
    from review_scorer.model.ngram_head import NgramHead
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.scoring.engines import score_with_ray
    from review_scorer.scoring.score import score_files

    model = SentimentModel.load(trained_model.model_dir)
    texts = _mini_texts()
    labels = np.arange(len(texts)) % 2  # any labels: the head only has to be a real one
    head = NgramHead.fit(model.encode(texts), labels, vocab_size=len(model.vocab))
    head.alpha, head.beta, head.bias, head.gamma = 0.8, 1.5, 0.1, 2.0
    head.valence, head.negator, head.lexicon_source = lexicon_arrays(model.vocab.tokens)
    model.ngram_head = head
    model.lexicon = LexiconTerm.for_vocabulary(model.vocab.tokens, 1.5)
    # Clause rules that reach every review the tiny model reads (it reads at most 40 words).
    model.clauses = ClauseRules.for_vocabulary(model.vocab.tokens, contrast_max_words=40)
    assert model.clauses.plans(model.encode(pd.read_csv(review_inputs / "a.csv")["review"].fillna("")))
    stacked = model.save(tmp_path / "stacked")

    files = [str(review_inputs / "a.csv")]
    model.ngram_head = model.lexicon = model.clauses = None
    plain = score_files(files, model_dir=model.save(tmp_path / "network"), out_dir=tmp_path / "plain",
                        options=_options(fmt="csv"))
    local = score_files(files, model_dir=stacked, out_dir=tmp_path / "local",
                        options=_options(fmt="csv"))
    result = score_with_ray(files, model_path=stacked, out_dir=tmp_path / "ray",
                            options=_options())
    assert result.files[0].ok and result.files[0].scored == local.files[0].scored
    mine = _read_parts(result.predictions_dir)["score"].to_numpy()
    theirs = pd.read_csv(local.files[0].predictions_path)["score"].to_numpy()
    network = pd.read_csv(plain.files[0].predictions_path)["score"].to_numpy()
    assert np.array_equal(np.isnan(mine), np.isnan(theirs))
    np.testing.assert_allclose(mine, theirs, atol=1e-4)  # the CSV holds 4 decimals
    assert np.nanmax(np.abs(theirs - network)) > 0.05


def test_ray_engine_survives_a_killed_model_actor(local_ray, review_inputs, tmp_path):
    from review_scorer.model.artifacts import packaged_model_dir
    from review_scorer.scoring.engines import score_with_ray

    # The shipped model (a few hundred reviews a second here) keeps the actor the slowest
    # stage, so when the first chunk comes back most of the input is still to be scored.
    killed: list[int] = []
    seen = [0]
    seen_at_kill = [0]

    def kill_an_actor_once(rows: int) -> None:
        seen[0] += rows
        if killed:
            return
        for pid in _actor_pids():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            seen_at_kill[0] = seen[0]
            break

    result = score_with_ray([str(review_inputs)], model_path=packaged_model_dir(),
                            out_dir=tmp_path, options=_options(chunk_rows=100, report=False),
                            progress=kill_an_actor_once)
    assert killed, "no model actor process was found to kill"
    assert seen_at_kill[0] < 1000
    assert all(f.ok for f in result.files)
    # The killed actor had scored chunks and a restarted one scored the rest.
    assert result.actor_processes > result.actors
    parts = _read_parts(result.predictions_dir)
    expected = {(str(review_inputs / name), row) for name, n in
                (("a.csv", 1200), ("b.jsonl", 900), ("c.parquet", 1000)) for row in range(1, n + 1)}
    got = list(zip(parts["source_file"], parts["row"]))
    assert len(got) == len(expected) == len(set(got)) and set(got) == expected
    assert seen[0] == len(expected)


def _actor_pids() -> list[int]:
    """Model actor processes of the Ray instance this test process started (its descendants)."""
    parents, commands = _processes()

    def ours(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == os.getpid():
                return True
        return False

    return [pid for pid, cmd in commands.items() if "ChunkScorer" in cmd and ours(pid)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes() -> tuple[dict[int, int], dict[int, str]]:
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents, commands


def _stop_cluster(temp_dir: str, port: int) -> None:
    """Kill only the Ray processes started for this test: those whose command line names its
    temp folder or its GCS port, and their children (never `ray stop`, which would stop every
    Ray on the machine)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        parents, commands = _processes()
        marked = {pid for pid, cmd in commands.items()
                  if temp_dir in cmd or ("ray" in cmd and f":{port}" in cmd)}
        grown = True
        while grown:
            children = {pid for pid, parent in parents.items() if parent in marked} - marked
            grown = bool(children)
            marked |= children
        marked.discard(os.getpid())
        for pid in marked:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if marked and sig == signal.SIGTERM:
            time.sleep(3)


def test_ray_engine_on_a_two_node_cluster_through_address(review_inputs, trained_model,
                                                          tmp_path):
    import tempfile

    temp = tempfile.mkdtemp(prefix="rs-ray-", dir="/tmp")  # short: Ray's socket paths are long
    port = _free_port()
    # Ray >= 2.5x clusters started with `ray start` check a token (~/.ray/auth_token here, the
    # same file for both nodes); joining nodes and drivers must be told to send it.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    try:
        subprocess.run([*ray_cli, "start", "--head", f"--port={port}",
                        "--node-ip-address=127.0.0.1", "--num-cpus=1", f"--temp-dir={temp}",
                        "--include-dashboard=false", "--disable-usage-stats",
                        f"--object-store-memory={200 * 2**20}"],
                       check=True, env=env, capture_output=True, timeout=120)
        subprocess.run([*ray_cli, "start", f"--address=127.0.0.1:{port}",
                        "--node-ip-address=127.0.0.1", "--num-cpus=1",
                        f"--object-store-memory={200 * 2**20}"],
                       check=True, env=env, capture_output=True, timeout=120)
        code = (
            "import json, sys, ray\n"
            "from review_scorer.scoring.engines import score_with_ray\n"
            "from review_scorer.scoring.score import ScoreOptions\n"
            f"r = score_with_ray([{str(review_inputs)!r}], model_path={str(trained_model.model_dir)!r},"
            f" out_dir={'file://' + str(tmp_path)!r}, address='127.0.0.1:{port}',"
            " options=ScoreOptions(chunk_rows=200))\n"
            "print(json.dumps(r.to_dict()))\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=400, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-3000:]
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        _stop_cluster(temp, port)
        shutil.rmtree(temp, ignore_errors=True)
    assert summary["nodes"] == 2  # the actor and the writers ran on both nodes
    assert summary["rows"] == 3100 and summary["failed_files"] == 0
    # the parts went through pyarrow's filesystem layer, as they would to s3:// or gs://
    assert summary["predictions_dir"].startswith("file://")
    assert [p.name for p in tmp_path.glob("*.html")] == [f"{review_inputs.name}.html"]
    parts = _read_parts(Path(summary["predictions_dir"][len("file://"):]))
    assert len(parts) == 3100 and not parts.duplicated(["source_file", "row"]).any()


def test_ray_engine_unreachable_cluster_is_one_line_exit_1(trained_model, review_inputs, tmp_path):
    from review_scorer.scoring.engines import EngineError, score_with_ray

    started = time.perf_counter()
    with pytest.raises(EngineError) as info:
        score_with_ray([str(review_inputs)], model_path=trained_model.model_dir,
                       out_dir=tmp_path, address=f"127.0.0.1:{_free_port()}")
    assert time.perf_counter() - started < 30
    message = str(info.value)
    assert "\n" not in message and "cannot reach the Ray cluster" in message
    assert info.value.exit_code == 1
    assert not list(tmp_path.rglob("part-*"))


def test_ray_engine_without_ray_installed_names_the_extra(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['ray'] = None\n"
        "from review_scorer.scoring.engines import score_with_ray\n"
        "from review_scorer.errors import ReviewScorerError\n"
        "try:\n"
        "    score_with_ray(['reviews.csv'])\n"
        "except ReviewScorerError as exc:\n"
        "    print(exc.exit_code, exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("2 ") and 'pip install "review-scorer[ray]"' in lines[0]


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder (hidden ones too), by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("failure", ["bad input", "interrupted"])
def test_ray_engine_overwrite_keeps_the_earlier_outputs_when_the_rerun_fails(
        local_ray, trained_model, tmp_path, failure):
    from review_scorer.scoring.engines import score_with_ray

    src, out = tmp_path / "in" / "shop.csv", tmp_path / "out"
    src.parent.mkdir()
    _frame(300, 0).to_csv(src, index=False)
    first = score_with_ray([str(src)], model_path=trained_model.model_dir, out_dir=out,
                           options=_options(chunk_rows=100))
    assert all(f.ok for f in first.files) and first.report_path == out / "shop.html"
    before = _tree(out)
    assert "shop.html" in before and any(k.startswith("shop.predictions/part-") for k in before)

    def interrupt(rows: int) -> None:
        raise KeyboardInterrupt

    if failure == "bad input":
        src.write_text('id,review\n1,"an unclosed quote\n2,fine\n', encoding="utf-8")
        again = score_with_ray([str(src)], model_path=trained_model.model_dir, out_dir=out,
                               options=_options(chunk_rows=100, overwrite=True))
        assert not again.files[0].ok and again.files[0].exit_code == 2
        assert again.predictions_dir is None and again.report_path is None
    else:
        with pytest.raises(KeyboardInterrupt):
            score_with_ray([str(src)], model_path=trained_model.model_dir, out_dir=out,
                           options=_options(chunk_rows=100, overwrite=True), progress=interrupt)
    assert _tree(out) == before  # same files, same bytes, nothing hidden left behind


def test_ray_engine_missing_inputs_fail_before_a_cluster_starts(trained_model, tmp_path):
    from review_scorer.errors import InputError
    from review_scorer.scoring.engines import score_with_ray

    started = time.perf_counter()
    with pytest.raises(InputError, match=r"nosuch\.csv: file not found"):
        score_with_ray([str(tmp_path / "nosuch.csv")], model_path=trained_model.model_dir,
                       out_dir=tmp_path / "out")
    assert time.perf_counter() - started < 10  # no cluster was started or joined
    assert not (tmp_path / "out").exists()
