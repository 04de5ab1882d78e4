"""Use the 50k unlabeled IMDB reviews to train one LSTM: soft labels from a teacher (distillation).

The teacher is trained only on the fit part of the IMDB train split (the product's movie-disjoint
validation slice and the test set are never seen by it). It scores the 50k unlabeled reviews;
the student, a single BiLSTM of the shipped architecture, trains on the fit part's gold labels
plus those soft labels, early-stopped on the validation slice as usual. Self-training and
knowledge distillation onto unlabeled in-domain text (Hinton et al. 2015; Tang et al. 2019
distil into BiLSTMs on augmented text) are the ideas; the question here is whether a single LSTM
trained this way passes the NB-weighted logistic regression on validation.

Teachers (spec "teacher"): "lstm" (the mean of the --teacher-lstm models, by default the shipped
one: self-training; in the logged runs, the 2-member ensemble shipped on 2026-11-21), "nb" (the
NB-weighted LR on 1-3 grams), "nb+lstm" (the mean of their probabilities, fixed in advance, not
tuned). Every run is logged to benchmarks/distill_imdb.jsonl; the test set is read only by
--ship, and every read is logged and counted. This is the recipe of the model shipped on
2026-11-22; the shipped model is now made by `review-scorer train` (review_scorer/training/teachers.py).

    python benchmarks/distill_imdb.py '{"name": "student_nb+lstm", "teacher": "nb+lstm"}' \
        --teacher-lstm PREVIOUS_MODEL_DIR

(--teacher-lstm takes several directories, so give the JSON specs before it.) Students train
through the product's stages (train.make_splits, prepare_data with SoftTargets, fit_members),
so a validation-only run and a --ship run of one spec train the same network.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
LOG = Path(__file__).resolve().parent / "distill_imdb.jsonl"
DEFAULT_TEACHER = Path(__file__).resolve().parent.parent / "review_scorer" / "default_model"


def teacher_scores(reviews, cleaned, fit, val, lstm_dirs: list[Path],
                   cache_dir: Path) -> dict[str, np.ndarray]:
    """Each teacher's probabilities on the validation slice and the unlabeled reviews.

    "lstm" is the mean over the given LSTM models. Each teacher's scores are cached on their own
    (the NB-LR's by name, an LSTM's by its meta.json digest), so a run with another set of LSTM
    teachers never reuses the wrong ones.
    """
    import hashlib

    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.text.cleaning import clean_text

    def cached(path: Path, compute) -> dict[str, np.ndarray]:
        if path.exists():
            with np.load(path) as saved:
                return dict(saved)
        out = compute()
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
        return out

    def nb():
        from finetune_imdb import nb_logistic_baseline

        started = time.perf_counter()
        unlabeled = [clean_text(t) for t in reviews.unlabeled]
        val_s, unl_s = nb_logistic_baseline([cleaned[i] for i in fit], reviews.labels[fit],
                                            [[cleaned[i] for i in val], unlabeled])
        return {"val": val_s, "unl": unl_s, "seconds": np.array(time.perf_counter() - started)}

    def lstm(directory: Path):
        def compute():
            model, started = SentimentModel.load(directory), time.perf_counter()
            val_s = model.predict([reviews.texts[i] for i in val])
            unl_s = model.predict(reviews.unlabeled)
            return {"val": val_s, "unl": unl_s, "seconds": np.array(time.perf_counter() - started)}
        return compute

    parts = {"nb": cached(cache_dir / f"distill-nb-fit{len(fit)}.npz", nb)}
    for directory in lstm_dirs:
        digest = hashlib.sha256((directory / "meta.json").read_bytes()).hexdigest()[:16]
        parts[str(directory)] = cached(cache_dir / f"distill-lstm-{digest}.npz", lstm(directory))
    lstms = [parts[str(d)] for d in lstm_dirs]
    return {"nb_val": parts["nb"]["val"], "nb_unl": parts["nb"]["unl"],
            "lstm_val": np.mean([p["val"] for p in lstms], axis=0),
            "lstm_unl": np.mean([p["unl"] for p in lstms], axis=0),
            "seconds": np.array([float(parts["nb"]["seconds"]),
                                 sum(float(p["seconds"]) for p in lstms)])}


def soft_labels(scores: dict[str, np.ndarray], teacher: str, part: str) -> np.ndarray:
    parts = {"nb": [scores[f"nb_{part}"]], "lstm": [scores[f"lstm_{part}"]],
             "nb+lstm": [scores[f"nb_{part}"], scores[f"lstm_{part}"]]}[teacher]
    out = np.mean(parts, axis=0).astype(np.float32)
    return np.where(np.isnan(out), 0.5, out)


def soft_targets(spec: dict, reviews, val, scores, teacher_lstms: list[Path]):
    """The spec's teacher as SoftTargets over the unlabeled reviews (spec "unlabeled": only the
    first N; "hard": targets rounded to 0/1), with its validation accuracy."""
    from review_scorer.metrics import binary_metrics
    from review_scorer.training.teachers import SoftTargets

    teacher = spec.get("teacher", "nb+lstm")
    count = int(spec.get("unlabeled", len(reviews.unlabeled)))
    targets = soft_labels(scores, teacher, "unl")[:count]
    if spec.get("hard"):
        targets = (targets >= 0.5).astype(np.float32)
    accuracy = binary_metrics(reviews.labels[val], soft_labels(scores, teacher, "val"))["accuracy"]
    return SoftTargets(list(reviews.unlabeled[:count]), targets, teacher_text(teacher, teacher_lstms),
                       teacher_validation_accuracy=round(float(accuracy), 4))


def run(spec: dict, reviews, val, scores, teacher_lstms: list[Path], *,
        save_dir: Path | None) -> dict:
    """One student through the product's training stages, scored on validation only."""
    from review_scorer.config import TrainConfig
    from review_scorer.metrics import binary_metrics, log_loss
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.train import fit_members, make_splits, prepare_data

    cfg = TrainConfig().replace(ensemble_size=1, **spec.get("kw", {}))
    splits = make_splits(reviews, cfg)
    assert np.array_equal(np.sort(splits.validation), np.sort(val)), "not the product's slice"
    data = prepare_data(reviews, splits, cfg,
                        soft_targets=soft_targets(spec, reviews, val, scores, teacher_lstms))
    fitted = fit_members(cfg, data)
    scorer = SentimentModel(fitted.model, data.vocab, cfg, history=fitted.history, name=spec["name"])
    val_seqs, val_idx = data.validation
    val_scores, yv = scorer.predict_ids(val_seqs), data.labels[val_idx]
    metrics = binary_metrics(yv, val_scores, loss=log_loss(yv, val_scores))
    if save_dir is not None:
        scorer.meta = {"name": spec["name"], "validation_metrics": metrics, "spec": spec}
        scorer.save(save_dir / spec["name"], overwrite=True)
    history = fitted.history
    return {"name": spec["name"], "spec": spec, "fit_s": round(fitted.seconds),
            "train_reviews": len(data.fit_examples()[0]),
            "val_loss": [round(v, 4) for v in history["val_loss"]],
            "val_acc": [round(v, 4) for v in history["val_accuracy"]],
            "final_val_acc": round(metrics["accuracy"], 4), "final_val_loss": round(metrics["loss"], 4)}


def teacher_text(teacher: str, lstm_dirs: list[Path]) -> str:
    """One line for meta.json: which models taught, and that their labels were the fit part's."""
    from review_scorer.model.sentiment import SentimentModel

    def name(directory: Path) -> str:
        meta = SentimentModel.load(directory).meta
        networks = meta.get("ensemble_size", 1)
        return (f"{meta.get('name', directory.name)} ({networks} network{'s' * (networks > 1)}, "
                f"made {str(meta.get('created_at', '?'))[:10]})")

    names = [name(d) for d in lstm_dirs]
    lstm = (f"the LSTM model {names[0]}" if len(names) == 1 else
            f"the mean of the LSTM models {', '.join(names)}")
    nb = "NB-weighted logistic regression on word 1-3 grams"
    return {"nb+lstm": f"mean probability of {nb} and {lstm}",
            "lstm": lstm, "nb": nb}[teacher] + " (labels from the fit part only)"


def ship(spec: dict, reviews, cleaned, fit, val, test, scores, out: Path,
         teacher_lstms: list[Path], previous: Path) -> dict:
    """Train the candidate through the product's run_training (full meta.json, training report,
    one counted test read), and read the test set once more for the baselines in the same run."""
    from finetune_imdb import nb_logistic_baseline
    from train_accuracy import tfidf_baseline

    from review_scorer.config import TrainConfig
    from review_scorer.metrics import binary_metrics
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training.train import run_training

    soft = soft_targets(spec, reviews, val, scores, teacher_lstms)
    config = TrainConfig().replace(**{"ensemble_size": 1, **spec.get("kw", {})})
    started = time.perf_counter()
    result = run_training(config, data_source=reviews, model_dir=out, overwrite=True,
                          name=spec["name"], soft_targets=soft,
                          epoch_progress=lambda e: print("epoch", json.dumps(e), flush=True))
    row = {"name": f"{spec['name']} (shipped candidate, test read)", "spec": spec, "test_read": True,
           "fit_s": round(result.train_seconds), "wall_s": round(time.perf_counter() - started),
           "final_val_acc": round(result.validation_metrics["accuracy"], 4),
           "final_val_loss": round(result.validation_metrics["loss"], 4),
           "test_acc": round(result.test_metrics["accuracy"], 4),
           "val_acc": [round(v, 4) for v in result.history["val_accuracy"]]}
    train_all = np.flatnonzero(reviews.splits == "train")
    started = time.perf_counter()
    nb_test, = nb_logistic_baseline([cleaned[i] for i in train_all], reviews.labels[train_all],
                                    [[cleaned[i] for i in test]])
    row["nb_lr_full_train_test_acc"] = round(binary_metrics(reviews.labels[test], nb_test)["accuracy"], 4)
    row["nb_lr_s"] = round(time.perf_counter() - started)
    row["tfidf_lr_test_acc"] = round(float(tfidf_baseline(reviews)["metrics"]["accuracy"]), 4)
    before = SentimentModel.load(previous).predict([reviews.texts[i] for i in test])
    row["previous_model_test_acc"] = round(binary_metrics(reviews.labels[test], before)["accuracy"], 4)
    row["previous_model"] = str(previous)
    return row


def write_results(note: str) -> None:
    """The RESULTS.md section from every logged run, with the number of test-set reads."""
    from _results import logged_runs, markdown_table, test_cell, test_reads, validation_cells, write_section

    rows = logged_runs(LOG)
    table, lstms = [], "previous_default_model"
    for r in rows:
        if r["name"] == "teachers":
            lstms = "+".join(Path(d).name for d in r.get("lstm_teachers", ["previous_default_model"]))
            for teacher in ("nb", "lstm", "nb+lstm"):
                label = teacher.replace("lstm", f"lstm({lstms})")
                table.append([f"teacher: {label}", "—", "—", f"{100 * r[f'val_acc_{teacher}']:.2f}%",
                              "—", "not read"])
            continue
        name = r["name"]
        if r.get("test_read") and "teacher" in r.get("spec", {}):  # say which teachers taught it
            name = f"{name}: student of {r['spec']['teacher'].replace('lstm', f'lstm({lstms})')}"
        table.append([name, r.get("train_reviews", 72495 if r.get("test_read") else "—"),
                      *validation_cells(r), test_cell(r)])
    reads = test_reads(rows)
    write_section("distill_imdb", (
        "## Distillation onto the 50k unlabeled reviews: one LSTM (movie-disjoint validation)\n\n"
        + markdown_table(["run", "training reviews", "val accuracy per epoch (%)",
                          "saved model val acc", "val loss", "test accuracy"], table)
        + f"\n\nTest-set reads in these runs: {reads}. {note}\n"))


def main() -> None:
    from finetune_imdb import prepare

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help='JSON: {"name": ..., "teacher": "nb+lstm", "kw": {...}}')
    parser.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz")
    parser.add_argument("--teacher-lstm", type=Path, nargs="+", default=[DEFAULT_TEACHER],
                        help="LSTM model dirs whose mean probability is the 'lstm' teacher")
    parser.add_argument("--previous", type=Path, help="with --ship: the model it would replace, "
                        "scored on the test set in the same run (default: the first teacher)")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()),
                        help="where each teacher's scores are kept between runs")
    parser.add_argument("--save-models", type=Path)
    parser.add_argument("--ship", type=Path, metavar="MODEL_DIR",
                        help="train the one spec given through run_training into MODEL_DIR and "
                             "read the test set (counted) for it and the baselines")
    parser.add_argument("--results-from-log", metavar="NOTE",
                        help="write the RESULTS.md section from the log (NOTE: a paragraph)")
    args = parser.parse_args()
    if args.results_from_log is not None:
        write_results(args.results_from_log)
        return
    from review_scorer.metrics import binary_metrics

    reviews, cleaned, fit, val, test, kind = prepare(args.data)
    print(f"fit {len(fit)}, validation {len(val)} ({kind}), unlabeled {len(reviews.unlabeled)}",
          flush=True)
    scores = teacher_scores(reviews, cleaned, fit, val, args.teacher_lstm, args.cache_dir)
    yv = reviews.labels[val]  # the teachers' validation accuracies, logged with every run
    row = {"name": "teachers", "fit_s": [round(float(s)) for s in scores["seconds"]],
           "lstm_teachers": [str(d) for d in args.teacher_lstm]}
    for teacher in ("nb", "lstm", "nb+lstm"):
        accuracy = binary_metrics(yv, soft_labels(scores, teacher, "val"))["accuracy"]
        row[f"val_acc_{teacher}"] = round(accuracy, 4)
    _record(row)
    if args.ship is not None:
        spec, = map(json.loads, args.runs)
        _record(ship(spec, reviews, cleaned, fit, val, test, scores, args.ship, args.teacher_lstm,
                     args.previous or args.teacher_lstm[0]))
        return
    for spec in map(json.loads, args.runs):
        _record(run(spec, reviews, val, scores, args.teacher_lstm, save_dir=args.save_models))


def _record(row: dict) -> None:
    print("RESULT", json.dumps(row), flush=True)
    with LOG.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
