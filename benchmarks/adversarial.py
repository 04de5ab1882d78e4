"""Adversarial training on the embeddings (TrainConfig.adversarial_eps): trained models side by side
on validation data.

Each --model-dir is a model trained by `review-scorer train` on the IMDB archive (the first is the
baseline, normally the shipped one; the others, e.g. the same recipe with a config file setting
adversarial_eps). Every model is measured in one run on the same sets: IMDB's movie-disjoint
validation slice (all models hold out the same slice: same seed and archive), the three
development files (../shared/data/reviews-dev) and the behavioural suite. Two readings of each
model: its network alone (no clause rules, lexicon or n-gram term, no temperature) and the whole
model as `score` uses it. On IMDB validation each model is also compared with the baseline review
by review (exact McNemar test on the reviews where they disagree). The IMDB test set is not read.

    python benchmarks/adversarial.py --model-dir review_scorer/default_model \\
        --model-dir /tmp/at_model [--write-results]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _scores(model_dir: str, sets: dict) -> dict[str, dict[str, np.ndarray]]:
    """{reading: {set: probabilities}} for the network alone and the whole model. Texts without
    a known word score 0.5 (the scorer leaves them unscored; here they count as a coin)."""
    from review_scorer.model.sentiment import SentimentModel

    whole = SentimentModel.load(model_dir)
    bare = SentimentModel.load(model_dir)
    bare.meta = {**bare.meta, "calibration": None}
    bare.lexicon = bare.clauses = bare.ngram_head = None
    out = {}
    for reading, model in (("network alone", bare), ("whole model", whole)):
        out[reading] = {}
        for name, (texts, _) in sets.items():
            p = np.asarray(model.predict(texts), dtype=np.float64)
            out[reading][name] = np.where(np.isnan(p), 0.5, p)
    return out


def _describe(model_dir: str) -> dict:
    base = Path(model_dir)
    meta = json.loads((base / "meta.json").read_text(encoding="utf-8"))
    config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    eps = float(config.get("adversarial_eps", 0.0))
    kind = config.get("adversarial_kind", "fgm")
    entropy = float(config.get("entropy_weight", 0.0))
    return {"eps": f"{eps:g}" + (f" ({kind})" if eps and kind != "fgm" else "")
            + (f"; entropy {entropy:g}" if entropy else ""),
            "seconds": meta.get("train_seconds"),
            "best_epoch": meta.get("best_epoch"), "epochs_run": meta.get("epochs_run")}


def mcnemar(base_right: np.ndarray, other_right: np.ndarray) -> tuple[int, int, float]:
    """(reviews only the baseline gets right, only the other gets right, two-sided exact p)."""
    from scipy.stats import binomtest

    b = int(np.sum(base_right & ~other_right))
    c = int(np.sum(~base_right & other_right))
    return b, c, float(binomtest(c, b + c, 0.5).pvalue) if b + c else 1.0


def measure(model_dirs: list[str]):
    from _results import model_label
    from lexicon_weight import _sets
    from sklearn.metrics import roc_auc_score

    sets, _ = _sets()
    scores = {d: _scores(d, sets) for d in model_dirs}
    rows = []
    for d in model_dirs:
        info = _describe(d)
        for reading in ("network alone", "whole model"):
            cells = []
            for name, (_, y) in sets.items():
                p = scores[d][reading][name]
                cells.append(f"{100 * np.mean((p >= 0.5) == y):.2f}% / {roc_auc_score(y, p):.3f}")
            y = sets["imdb validation"][1]
            right = (scores[d][reading]["imdb validation"] >= 0.5) == y
            base_right = (scores[model_dirs[0]][reading]["imdb validation"] >= 0.5) == y
            b, c, p = mcnemar(base_right, right)
            paired = "baseline" if d == model_dirs[0] else f"{c - b:+d} ({b} / {c}, p = {p:.2f})"
            seconds = "" if info["seconds"] is None else f"{info['seconds']:,.0f} s"
            rows.append([model_label(d, with_path=False) + f", `{d}`", info["eps"], reading,
                         *cells, paired, seconds, f"{info['best_epoch']} of {info['epochs_run']}"])
    sizes = {name: len(y) for name, (_, y) in sets.items()}
    return rows, sizes


def main() -> None:
    from _results import command, machine, markdown_table, write_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", action="append", required=True,
                        help="a trained model directory (repeat; the first is the baseline)")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--section", default="adversarial", help="RESULTS.md section to write")
    parser.add_argument("--title", default="Adversarial training on the embeddings",
                        help="the section's heading (what the models differ in)")
    parser.add_argument("--note", default="", help="a sentence added under the table")
    args = parser.parse_args()
    started = time.time()
    rows, sizes = measure(args.model_dir)
    header = ["model", "adversarial eps (kind); entropy weight", "reading",
              *[f"{name} ({n:,}) acc / AUC" for name, n in sizes.items()],
              "IMDB validation reviews gained vs the baseline (lost / gained, McNemar p)",
              "fitting time", "best epoch"]
    table = markdown_table(header, rows)
    body = (
        f"## {args.title} (validation data only)\n\n" + table + "\n\n"
        "Each model was trained by `review-scorer train` on the IMDB archive with the same seed, so "
        "all hold out the same movie-disjoint validation slice; 'network alone' is the network "
        "without clause rules, lexicon term, n-gram term or temperature, 'whole model' is what "
        "`score` uses. Accuracy at 0.5. The IMDB test set is not read here (each training run "
        "reads it once, counted in the README)." + (f" {args.note}" if args.note else "") + "\n\n"
        f"- machine: {machine()}\n- date: {time.strftime('%Y-%m-%dT%H:%M:%S+00:00', time.gmtime())}\n"
        f"- command: `{command()}`\n- took: {time.time() - started:.0f} s\n")
    print(body)
    if args.write_results:
        write_section(args.section, body)


if __name__ == "__main__":
    main()
