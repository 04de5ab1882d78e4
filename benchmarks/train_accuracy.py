"""Train the default preset on the full IMDB train split and, in the same run, a TF-IDF + logistic
regression baseline; report test accuracy of both, training time and epochs.

    python benchmarks/train_accuracy.py --data ../shared/data/aclImdb_v1.tar.gz \
        --save-model review_scorer/default_model

--save-model keeps the trained directory (that is how the shipped default model is made).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz")
    parser.add_argument("--save-model", type=Path, help="keep the trained model directory here")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()

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
        result = run_training(TrainConfig(), data_source=reviews, model_dir=target,
                              overwrite=args.overwrite, verbose=2, name="imdb-lstm")
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
            f"Sizes: {result.sizes}. Device: {result.device}.")
    write_section("train_accuracy", body)
    print(table)


if __name__ == "__main__":
    main()
