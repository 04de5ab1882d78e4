"""Train the default config on the IMDB train split and, in the same run, a TF-IDF + logistic
regression baseline; report test accuracy of both, training time and epochs.

    python benchmarks/train_accuracy.py --data ../shared/data/aclImdb_v1.tar.gz

The LSTM is TrainConfig() as it is today, the recipe `review-scorer train` uses: one BiLSTM
distilled from the length-aware NB-LR + VADER teacher (review_scorer/training/teachers.py) on the
unlabeled reviews and short pieces of all reviews, beside the gold labels (about an hour on
2 CPU cores). The shipped model is made by `review-scorer train`, not by this script.
--save-model DIR keeps the trained directory for a look; it refuses the package's
review_scorer/default_model, so a benchmark run can never replace the shipped model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._results import markdown_table, write_section


def tfidf_baseline(reviews) -> dict:
    """TF-IDF over word 1-2 grams (sublinear tf) + logistic regression, on the same cleaned text."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from review_scorer.metrics import binary_metrics
    from review_scorer.text.cleaning import clean_text

    train, test = reviews.split("train"), reviews.split("test")
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2,
                                 token_pattern=r"\S+", lowercase=False)
    x_train = vectorizer.fit_transform([clean_text(t) for t in train.texts])
    classifier = LogisticRegression(C=4.0, max_iter=2000)
    classifier.fit(x_train, train.labels)
    seconds = time.perf_counter() - started
    scores = classifier.predict_proba(vectorizer.transform([clean_text(t) for t in test.texts]))[:, 1]
    return {"metrics": binary_metrics(test.labels, scores), "seconds": seconds}


def _is_shipped_model_dir(path: Path) -> bool:
    """Whether path is a package's default_model folder (this checkout's, another worktree's or
    the installed one): review_scorer/default_model at the end of the resolved path."""
    return path.resolve().parts[-2:] == ("review_scorer", "default_model")


def _print_epoch(info: dict) -> None:
    logs = " ".join(f"{k} {v:.4f}" for k, v in sorted(info.get("logs", {}).items())
                    if isinstance(v, (int, float)))
    print(f"{info.get('stage', 'fit')} member {info.get('member')} epoch {info.get('epoch')}: "
          f"{logs} ({info.get('seconds', 0):.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz")
    parser.add_argument("--save-model", type=Path, help="keep the trained model directory here")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    if args.save_model is not None and _is_shipped_model_dir(args.save_model):
        parser.error(f"--save-model {args.save_model}: that is the shipped model's folder; "
                     "the shipped model is made by `review-scorer train`, pick another folder")
    if args.save_model is not None:
        from review_scorer.model.artifacts import check_target

        check_target(args.save_model, overwrite=args.overwrite)  # refuse before a long run

    from review_scorer.config import TrainConfig
    from review_scorer.io import load_labeled
    from review_scorer.training.train import run_training

    reviews = load_labeled(args.data)
    baseline = tfidf_baseline(reviews)
    print(f"TF-IDF + LR: test accuracy {baseline['metrics']['accuracy']:.4f} "
          f"in {baseline['seconds']:.0f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        target = args.save_model or Path(tmp) / "imdb-lstm"
        started = time.perf_counter()
        config = TrainConfig()
        result = run_training(config, data_source=reviews, model_dir=target,
                              overwrite=args.overwrite, name="imdb-lstm",
                              stage_progress=lambda line: print(line, flush=True),
                              epoch_progress=_print_epoch)
        wall = time.perf_counter() - started
        size_mb = sum(p.stat().st_size for p in Path(result.model_dir).iterdir()) / 1e6
    lstm = result.test_metrics
    base = baseline["metrics"]
    rows = [
        ["LSTM default preset", f"{lstm['accuracy']:.2%}", f"{lstm['f1']:.4f}", f"{lstm['roc_auc']:.4f}",
         f"{result.train_seconds:.0f} s ({wall:.0f} s wall incl. data + eval)",
         f"{result.epochs_run} (best {result.best_epoch})", f"{size_mb:.1f} MB"],
        ["TF-IDF 1-2 gram + logistic regression", f"{base['accuracy']:.2%}", f"{base['f1']:.4f}",
         f"{base['roc_auc']:.4f}", f"{baseline['seconds']:.0f} s", "—", "—"],
    ]
    table = markdown_table(["model", "test accuracy (25k)", "F1", "ROC AUC", "training time",
                            "epochs", "model dir size"], rows)
    diff = lstm["accuracy"] - base["accuracy"]
    body = ("## Training accuracy: default preset vs TF-IDF baseline (official 25k/25k split)\n\n"
            + table + f"\n\nLSTM minus baseline: {diff * 100:+.2f} points of accuracy, same run. "
            f"Sizes: {result.sizes}. Device: {result.device}.\n\nLSTM config: TrainConfig() "
            f"defaults, the `review-scorer train` recipe (teacher {config.teacher}, "
            f"distill_pieces {config.distill_pieces:,}, ensemble_size {config.ensemble_size}, "
            f"up to {config.epochs} epochs); not the shipped model, which is trained apart.")
    write_section("train_accuracy", body)
    print(table)


if __name__ == "__main__":
    main()
