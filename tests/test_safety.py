"""Nothing lost, ever: outputs, model directories, signals and bad settings (issue 9, output side)."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from review_scorer.cli import cli
from tests.conftest import MINI_IMDB, REPO


def _cli(*args, **kwargs):
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def _reviews(path, n=6, text="a great and moving film"):
    pd.DataFrame({"id": range(n), "review": [f"{text} {i}" for i in range(n)]}).to_csv(path, index=False)
    return path


def _score(model, *args):
    return _cli("score", *args, "--model-dir", model.model_dir)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ------------------------------------------------------------------ outputs published together


def test_safety_overwrite_with_report_path_a_directory_keeps_previous_predictions(trained_model, tmp_path):
    src, out = _reviews(tmp_path / "good1.csv"), tmp_path / "out"
    assert _score(trained_model, src, "--out-dir", out).exit_code == 0
    before = (out / "good1.predictions.csv").read_bytes()
    (out / "good1.html").unlink()
    (out / "good1.html").mkdir()
    result = _score(trained_model, src, "--out-dir", out, "--overwrite")
    assert result.exit_code == 2 and "good1.html is a directory" in result.output
    assert (out / "good1.predictions.csv").read_bytes() == before


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_safety_failed_report_restores_previous_outputs(trained_model, tmp_path, monkeypatch, failure):
    from review_scorer.report import render
    from review_scorer.scoring.score import score_files

    src, out = _reviews(tmp_path / "r.csv"), tmp_path / "out"
    score_files([src], model_dir=trained_model.model_dir, out_dir=out)
    before = _snapshot(out)
    _reviews(src, n=9, text="dull")  # the rerun would change both files

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(render, "build_report_html", fail)
    if isinstance(failure, KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt):
            score_files([src], model_dir=trained_model.model_dir, out_dir=out, overwrite=True)
    else:
        (f,) = score_files([src], model_dir=trained_model.model_dir, out_dir=out, overwrite=True).files
        assert not f.ok and f.predictions_path is None
    assert _snapshot(out) == before  # same files, same bytes, no temp files left


def test_safety_publish_failure_midway_puts_old_files_back(tmp_path, monkeypatch):
    from review_scorer.io import publish as outputs

    a, b = tmp_path / "a.csv", tmp_path / "a.html"
    a.write_text("old a"), b.write_text("old b")
    ta, tb = outputs.write_temp_beside(a, b"new a"), outputs.write_temp_beside(b, b"new b")
    real_link, real_replace = os.link, os.replace

    def failing(real):
        def move(src, dst, **kw):
            if str(dst).endswith(".html"):
                raise OSError(28, "No space left on device")
            return real(src, dst, **kw)
        return move

    monkeypatch.setattr(outputs.os, "link", failing(real_link))
    monkeypatch.setattr(outputs.os, "replace", failing(real_replace))
    with pytest.raises(Exception, match="No space"):
        outputs.publish_together([(ta, a), (tb, b)], overwrite=True)
    assert a.read_text() == "old a" and b.read_text() == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.html"]


def test_safety_output_names_are_unique_within_a_run(trained_model, tmp_path):
    for sub, n in (("a", 3), ("b", 4)):
        (tmp_path / "dup" / sub).mkdir(parents=True)
        _reviews(tmp_path / "dup" / sub / "reviews.csv", n=n)
    _reviews(tmp_path / "dup" / "reviews.csv-2.csv", n=5)
    out = tmp_path / "out"
    inputs = [tmp_path / "dup/a/reviews.csv", tmp_path / "dup/b/reviews.csv",
              tmp_path / "dup/reviews.csv-2.csv"]
    result = _score(trained_model, *inputs, "--out-dir", out, "--overwrite", "--json")
    assert result.exit_code == 0, result.output
    files = json.loads(result.output)["files"]
    predictions = [f["predictions"] for f in files]
    assert len(set(predictions)) == 3
    assert [len(pd.read_csv(p)) for p in predictions] == [3, 4, 5]


def test_safety_header_only_csv_writes_a_header_line(trained_model, tmp_path):
    src = tmp_path / "empty.csv"
    src.write_text("id,review,label\n", encoding="utf-8")
    result = _score(trained_model, src, "--out-dir", tmp_path / "o")
    assert result.exit_code == 0, result.output
    back = pd.read_csv(tmp_path / "o" / "empty.predictions.csv")
    assert list(back.columns) == ["id", "review", "label", "row", "sentiment", "score", "status"]
    assert len(back) == 0


def test_safety_xlsx_output_wider_than_excel_is_refused_before_scoring(trained_model, tmp_path):
    src = tmp_path / "wide.csv"
    columns = ["review"] + [f"c{i}" for i in range(16_390)]
    src.write_text(",".join(columns) + "\n" + ",".join(["great film"] + ["1"] * 16_390) + "\n")
    result = _score(trained_model, src, "--out-dir", tmp_path / "o", "--format", "xlsx")
    assert result.exit_code == 2
    assert "16,384" in result.output and "--format csv" in result.output
    assert not any((tmp_path / "o").iterdir())


def test_safety_excel_safe_csv_is_opt_in(trained_model, tmp_path):
    src = tmp_path / "f.csv"
    pd.DataFrame({"review": ["=1+1 great", "+fun film", "@boring", "-dull", "plain good"]}).to_csv(
        src, index=False)
    assert _score(trained_model, src, "--out-dir", tmp_path / "raw").exit_code == 0
    raw = pd.read_csv(tmp_path / "raw" / "f.predictions.csv", dtype=str)
    assert raw["review"].tolist()[0] == "=1+1 great"  # exact round trip by default
    assert _score(trained_model, src, "--out-dir", tmp_path / "safe", "--excel-safe-csv").exit_code == 0
    safe = pd.read_csv(tmp_path / "safe" / "f.predictions.csv", dtype=str)
    assert safe["review"].tolist() == ["'=1+1 great", "'+fun film", "'@boring", "'-dull", "plain good"]
    assert safe["score"].tolist() == raw["score"].tolist()


# ------------------------------------------------------------------ bad settings and paths


@pytest.mark.parametrize("args", [["--threshold", "nan"], ["--threshold", "1"], ["--batch-size", "0"]])
def test_safety_bad_option_values_are_usage_errors(trained_model, tmp_path, args):
    result = _score(trained_model, "sample_data/reviews.csv", "--out-dir", tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1


def test_safety_dangling_symlink_out_dir_is_named(trained_model, tmp_path):
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "gone")
    result = _score(trained_model, "sample_data/reviews.csv", "--out-dir", link)
    assert result.exit_code == 2 and "symbolic link to a missing folder" in result.output


@pytest.mark.parametrize(("key", "file", "value"), [("best_epoch", "meta.json", "two"),
                                                    ("accuracy", "metrics.json", "high")])
def test_safety_damaged_metadata_values_fail_on_load(model_dir_copy, tmp_path, key, file, value):
    from review_scorer.io.download import sha256_file

    path = model_dir_copy / file
    data = json.loads(path.read_text())
    data[key] = value
    path.write_text(json.dumps(data))
    if file != "meta.json":  # a careful forger recomputes the checksum too
        meta = json.loads((model_dir_copy / "meta.json").read_text())
        meta["files"][file] = sha256_file(path)
        (model_dir_copy / "meta.json").write_text(json.dumps(meta))
    result = _cli("score", "sample_data/reviews.csv", "--model-dir", model_dir_copy,
                  "--out-dir", tmp_path / "o")
    assert result.exit_code == 2 and key in result.output and "retrain" in result.output
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_safety_unexpected_error_in_one_file_does_not_stop_the_run(trained_model, tmp_path, monkeypatch):
    from review_scorer.io import reviews as reviews_module

    real = reviews_module.open_reviews

    def flaky(path, **kw):
        if "bad" in str(path):
            raise ValueError("something nobody expected")
        return real(path, **kw)

    monkeypatch.setattr("review_scorer.io.open_reviews", flaky, raising=False)
    good, bad = _reviews(tmp_path / "good.csv"), _reviews(tmp_path / "bad.csv")
    result = _score(trained_model, bad, good, "--out-dir", tmp_path / "o")
    assert result.exit_code == 1
    assert "good.csv: 6 rows" in result.output
    assert "bad.csv: unexpected ValueError: something nobody expected" in result.output


# ------------------------------------------------------------------ model directories


def test_safety_train_overwrite_never_deletes_a_folder_that_is_not_a_model(tmp_path, tiny_config_file):
    docs = tmp_path / "mydocs"
    (docs / "sub").mkdir(parents=True)
    (docs / "thesis.txt").write_text("years of work")
    result = _cli("train", "--data", MINI_IMDB, "--model-dir", docs, "--config", tiny_config_file,
                  "--overwrite")
    assert result.exit_code == 2 and "not a model directory" in result.output
    assert (docs / "thesis.txt").read_text() == "years of work" and (docs / "sub").is_dir()


def test_safety_train_refuses_the_current_folder(tmp_path, tiny_config_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("keep")
    result = _cli("train", "--data", MINI_IMDB, "--model-dir", ".", "--config", tiny_config_file,
                  "--overwrite")
    assert result.exit_code == 2 and "current folder" in result.output
    assert (tmp_path / "notes.txt").read_text() == "keep"


def test_safety_train_overwrite_refuses_model_dir_with_foreign_files(model_dir_copy, tiny_config_file):
    (model_dir_copy / "my-notes.md").write_text("mine")
    result = _cli("train", "--data", MINI_IMDB, "--model-dir", model_dir_copy, "--config",
                  tiny_config_file, "--overwrite")
    assert result.exit_code == 2 and "my-notes.md" in result.output


def test_safety_new_model_directory_follows_the_umask(trained_model):
    mode = trained_model.model_dir.stat().st_mode & 0o777
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o777 & ~mask


def test_safety_incomplete_default_model_dir_is_noted(tmp_path, monkeypatch):
    from review_scorer.model.artifacts import MODEL_DIR_ENV, resolve_model_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)
    (tmp_path / "models" / "imdb-lstm").mkdir(parents=True)
    notes = []
    resolve_model_dir(None, notes=notes)
    assert notes and "not a complete model directory" in notes[0]


# ------------------------------------------------------------------ signals


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_safety_sigterm_and_sighup_leave_no_temp_files(trained_model, tmp_path, signum, code, fmt):
    src = tmp_path / "big.csv"
    words = ["a", "great", "film", "with", "a", "dull", "and", "boring", "middle", "but", "a",
             "moving", "end"]
    n = 200_000
    texts = [" ".join(words[(i % 7):(i % 7) + 6 + i % 5]) for i in range(n)]
    pd.DataFrame({"review": texts}).to_csv(src, index=False)
    out, tmpdir = tmp_path / "out", tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "review_scorer", "score", str(src), "--model-dir",
         str(trained_model.model_dir), "--out-dir", str(out), "--format", fmt],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and any(p.name.endswith(".tmp") for p in out.iterdir()):
            break
        time.sleep(0.2)
    time.sleep(1.0)  # let some rows reach the temp file
    assert proc.poll() is None, "scoring finished before it could be interrupted"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(out.iterdir()) == []
    assert list(tmpdir.iterdir()) == []


# ------------------------------------------------------------------ awkward inputs, end to end


def test_safety_input_columns_named_like_outputs_are_all_kept(trained_model, tmp_path):
    src = tmp_path / "dup.csv"
    src.write_text("row,row_original,review\n7,x,great fun\n8,y,awful mess\n", encoding="utf-8")
    result = _score(trained_model, src, "--out-dir", tmp_path / "o")
    assert result.exit_code == 0, result.output
    back = pd.read_csv(tmp_path / "o" / "dup.predictions.csv", dtype=str)
    assert back["row_original.1"].tolist() == ["7", "8"] and back["row_original"].tolist() == ["x", "y"]
    assert back["row"].tolist() == ["1", "2"]


def test_safety_formula_cells_without_values_get_their_own_status(trained_model, tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["id", "review", "a", "b"])
    sheet.append([1, "a great and moving film", "x", "y"])
    sheet.append([2, '=C3&" "&D3', "dull", "mess"])  # written by a script: no cached value
    sheet.append([3, "", "p", "q"])
    book.save(tmp_path / "f.xlsx")
    result = _score(trained_model, tmp_path / "f.xlsx", "--out-dir", tmp_path / "o")
    assert result.exit_code == 0, result.output
    back = pd.read_csv(tmp_path / "o" / "f.predictions.csv", dtype=str, keep_default_na=False)
    assert back["status"].tolist() == ["ok", "formula without value", "empty text"]
    assert "formula" in result.output


def test_safety_pretrain_overwrite_never_deletes_a_folder_that_is_not_an_encoder(tmp_path, monkeypatch):
    from review_scorer.errors import OutputError
    from review_scorer.model.encoder import check_encoder_target

    docs = tmp_path / "mydocs"
    docs.mkdir()
    (docs / "thesis.txt").write_text("years of work")
    with pytest.raises(OutputError, match="not an encoder directory"):
        check_encoder_target(docs, overwrite=True)
    monkeypatch.chdir(docs)
    with pytest.raises(OutputError, match="current folder"):
        check_encoder_target(".", overwrite=True)
    assert (docs / "thesis.txt").read_text() == "years of work"


# ------------------------------------------------------------------ issue 20


def test_safety_an_output_that_is_an_input_of_the_run_is_refused_before_writing(trained_model,
                                                                                tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    a = _reviews(tmp_path / "a.csv", n=4)
    victim = _reviews(out / "a.predictions.csv", n=7, text="my own data")  # also an input
    before = _snapshot(out)
    roundabout = out / ".." / "out" / "a.predictions.csv"
    for inputs in ([a, victim], [victim, a], [a, roundabout]):
        result = _score(trained_model, *inputs, "--out-dir", out, "--overwrite")
        assert result.exit_code == 2, result.output
        assert "also an input of this run" in result.output and "Traceback" not in result.output
        assert _snapshot(out) == before  # nothing written, not even the other file's outputs


def test_safety_an_output_reached_through_a_link_to_an_input_is_refused(trained_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    src = _reviews(tmp_path / "r.csv", n=3)
    (out / "r.predictions.csv").symlink_to(src)
    before = src.read_bytes()
    result = _score(trained_model, src, "--out-dir", out, "--overwrite")
    assert result.exit_code == 2 and "also an input" in result.output
    assert src.read_bytes() == before


def _model_like(folder, entries):
    folder.mkdir()
    for name, content in entries.items():
        if content is None:
            (folder / name).mkdir()
            (folder / name / "chapter1.docx").write_text("a document")
        else:
            (folder / name).write_text(content)
    return folder


@pytest.mark.parametrize("entries", [
    {"meta.json": '{"title": "my site"}', "report.html": "<h1>my website</h1>"},
    {"meta.json": '{"format_version": 1, "files": {}}', "model.keras": None},
    {"meta.json": '{"format_version": 1}', "config.json": "{}", "vocab.txt": "the"},
])
def test_safety_train_overwrite_refuses_folders_that_only_look_like_a_model(tmp_path, entries):
    from review_scorer.errors import OutputError
    from review_scorer.model.artifacts import check_target

    folder = _model_like(tmp_path / "looks-like-a-model", entries)
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    with pytest.raises(OutputError, match="not a model directory"):
        check_target(folder, overwrite=True)
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before


def test_safety_train_overwrite_refuses_a_model_whose_files_changed(model_dir_copy):
    from review_scorer.errors import OutputError
    from review_scorer.model.artifacts import check_target

    check_target(model_dir_copy, overwrite=True)  # our own model directory: replaceable
    (model_dir_copy / "vocab.txt").write_text("someone edited this\n")
    with pytest.raises(OutputError, match="do not match the checksums"):
        check_target(model_dir_copy, overwrite=True)
    result = _cli("train", "--data", MINI_IMDB, "--model-dir", model_dir_copy, "--overwrite")
    assert result.exit_code == 2 and "not a model directory" in result.output


def test_safety_train_overwrite_of_a_symlinked_model_dir_leaves_no_hidden_link(trained_model,
                                                                              tmp_path):
    real = tmp_path / "real-model"
    import shutil

    shutil.copytree(trained_model.model_dir, real)
    link = tmp_path / "link_model"
    link.symlink_to(real)
    trained_model.model.save(link, overwrite=True)
    assert link.is_dir() and not link.is_symlink() and (link / "meta.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link_model", "real-model"]
    assert _snapshot(real) == _snapshot(trained_model.model_dir)  # the link's target untouched


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_safety_leftovers_of_a_killed_run_are_cleaned_and_mentioned(trained_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    src = _reviews(tmp_path / "r.csv", n=5)
    dead = _dead_pid()
    stale = [out / f".r.predictions.csv.{dead}-1a2b3c4d.tmp", out / f".r.html.{dead}-0f0f0f0f.tmp"]
    for path in stale:
        path.write_text("half written")
    old = out / ".r.html.abcdef12.tmp"  # a name without a pid: removed only when older than the run
    old.write_text("older")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    alive = out / f".r.html.{os.getppid()}-99999999.tmp"  # its process still runs: kept
    alive.write_text("someone else's")
    other = out / f".notes.txt.{dead}-1a2b3c4d.tmp"  # not a target of this run: kept
    other.write_text("not ours to judge")
    result = _score(trained_model, src, "--out-dir", out)
    assert result.exit_code == 0, result.output
    assert "removed 3 temporary file(s)" in result.output and "killed" in result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["r.predictions.csv", "r.html", alive.name, other.name])


def test_safety_a_set_aside_original_of_a_killed_run_is_put_back(trained_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    src = _reviews(tmp_path / "r.csv", n=5)
    (out / f".r.html.{_dead_pid()}-12345678.old").write_text("<p>the earlier report</p>")
    result = _score(trained_model, src, "--out-dir", out, "--no-report")
    assert result.exit_code == 0, result.output
    assert "put back r.html" in result.output
    assert (out / "r.html").read_text() == "<p>the earlier report</p>"


@pytest.mark.slow
def test_safety_rerun_after_sigkill_cleans_the_temp_files(trained_model, tmp_path):
    src, out = tmp_path / "big.csv", tmp_path / "out"
    pd.DataFrame({"review": [f"a great film {i % 97} with a dull end" for i in range(60_000)]}
                 ).to_csv(src, index=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "review_scorer", "score", str(src), "--model-dir",
         str(trained_model.model_dir), "--out-dir", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and any(p.name.endswith(".tmp") for p in out.iterdir()):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "scoring finished before it could be killed"
    proc.kill()
    proc.wait()
    left = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert left
    result = _score(trained_model, src, "--out-dir", out)
    assert result.exit_code == 0, result.output
    assert "killed" in result.output and left[0] in result.output
    assert sorted(p.name for p in out.iterdir()) == ["big.html", "big.predictions.csv"]


def test_safety_excel_safe_csv_neutralises_header_cells(trained_model, tmp_path):
    src = tmp_path / "h.csv"
    header = ['=HYPERLINK("http://evil.example","click")', "+cmd|' /C calc'!A0", "review"]
    pd.DataFrame([["x", "y", "a great film"]], columns=header).to_csv(src, index=False)
    assert _score(trained_model, src, "--out-dir", tmp_path / "o", "--excel-safe-csv",
                  "--text-column", "review").exit_code == 0
    with open(tmp_path / "o" / "h.predictions.csv", encoding="utf-8", newline="") as handle:
        import csv

        written = next(csv.reader(handle))
    assert written[:3] == ["'" + header[0], "'" + header[1], "review"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in written)


def test_safety_nan_in_model_metrics_gives_valid_json_and_no_traceback(model_dir_copy, tmp_path):
    from review_scorer.io.download import sha256_file

    metrics = json.loads((model_dir_copy / "metrics.json").read_text())
    metrics["accuracy"] = float("nan")
    (model_dir_copy / "metrics.json").write_text(json.dumps(metrics))  # writes NaN
    meta = json.loads((model_dir_copy / "meta.json").read_text())
    meta["files"]["metrics.json"] = sha256_file(model_dir_copy / "metrics.json")
    (model_dir_copy / "meta.json").write_text(json.dumps(meta))
    src = _reviews(tmp_path / "r.csv", n=3)
    proc = subprocess.run(
        [sys.executable, "-m", "review_scorer", "score", str(src), "--model-dir",
         str(model_dir_copy), "--out-dir", str(tmp_path / "o"), "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["model"]["test_accuracy"] is None and summary["rows"] == 3
    text = _cli("score", src, "--model-dir", model_dir_copy, "--out-dir", tmp_path / "o2")
    assert text.exit_code == 0 and "test accuracy n/a" in text.output


def _labeled(path, texts_pos, texts_neg, n=20):
    rows = [{"review": texts_pos[i % len(texts_pos)], "label": "positive"} for i in range(n)]
    rows += [{"review": texts_neg[i % len(texts_neg)], "label": "negative"} for i in range(n)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("pos", "neg", "expected"), [
    (["...", "<br />", "***"], ["--", "<p></p>", "&nbsp;"], "no review in"),
    (["a great film", "loved it"], ["- ...", "<br /><br />"], "no negative review"),
])
def test_safety_train_on_texts_without_words_is_refused_before_training(tmp_path, pos, neg, expected):
    # fine-tuning the shipped model (a config would be refused: fine-tuning keeps its settings)
    data = _labeled(tmp_path / "nowords.csv", pos, neg)
    started = time.monotonic()
    result = _cli("train", "--data", data, "--model-dir", tmp_path / "m")
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error:") and expected in line and "nowords.csv" in line
    assert "ValueError" not in line and not (tmp_path / "m").exists()
    assert time.monotonic() - started < 60


def test_safety_huge_config_values_are_refused_in_one_line(tmp_path):
    config = tmp_path / "huge.toml"
    config.write_text("lstm_units = 100000000\n", encoding="utf-8")
    result = _cli("train", "--data", MINI_IMDB, "--model-dir", tmp_path / "m", "--config", config)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert "lstm_units must be at most" in line and "ResourceExhausted" not in line


def test_safety_missing_input_is_reported_before_tensorflow_loads(trained_model, tmp_path):
    code = (
        "import sys\n"
        "from review_scorer.scoring.score import score_files\n"
        f"r = score_files([{str(tmp_path / 'nosuch.csv')!r}], model_dir={str(trained_model.model_dir)!r},"
        f" out_dir={str(tmp_path / 'o')!r})\n"
        "print(r.files[0].exit_code, r.files[0].error)\n"
        "assert 'tensorflow' not in sys.modules, 'the model was loaded'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("2 ") and "nosuch.csv: file not found" in proc.stdout


def test_safety_report_names_files_without_their_folders_unless_asked(trained_model, tmp_path):
    (tmp_path / "private-folder").mkdir()
    src = _reviews(tmp_path / "private-folder" / "r.csv", n=4)
    assert _score(trained_model, src, "--out-dir", tmp_path / "o").exit_code == 0
    html = (tmp_path / "o" / "r.html").read_text(encoding="utf-8")
    assert "r.csv" in html and trained_model.model_dir.name in html
    assert str(tmp_path) not in html and "private-folder" not in html
    assert str(MINI_IMDB) not in html
    assert _score(trained_model, src, "--out-dir", tmp_path / "full", "--report-paths").exit_code == 0
    full = (tmp_path / "full" / "r.html").read_text(encoding="utf-8")
    assert str(src) in full and str(trained_model.model_dir) in full
    training = (trained_model.model_dir / "report.html").read_text(encoding="utf-8")
    assert str(trained_model.model_dir.parent) not in training and str(MINI_IMDB) not in training


def test_safety_several_files_end_with_a_tally(trained_model, tmp_path):
    good = _reviews(tmp_path / "good.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text('id,review\n1,"never closed\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["score", str(good), str(bad), str(tmp_path / "gone.csv"),
                                      "--model-dir", str(trained_model.model_dir), "--out-dir",
                                      str(tmp_path / "o"), "--json"])
    assert result.exit_code == 2
    json.loads(result.stdout)  # the tally goes to stderr: stdout stays one JSON document
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("done: 1 of 3 files scored, 2 failed:")
    assert str(bad) in last and str(tmp_path / "gone.csv") in last
