"""Train the shipped recipe with a born-again teacher (Furlanello et al. 2018): the long-text
part of the distillation teacher is a trained model (by default the shipped one: network, clause
rules, lexicon and n-gram terms, calibrated), the rest of the recipe unchanged.

The recipe's teacher (training/teachers.py LengthMixTeacher) mixes its members by text length:
the review-level NB-LR leads from 80 words on, the piece-level NB-LR and the lexicon on short text.
Here the teacher's logit of a text of n cleaned words becomes

    (1 - s) * the recipe teacher's logit + s * the trained model's calibrated logit,  s = min(1, n / 80)

so the 50,000 unlabeled reviews are labeled by the trained model and short pieces mostly as
before; negated copies keep the recipe's teacher. An experiment, not an option of `train`: the
trained model is compared with others by benchmarks/adversarial.py on validation data.

    python benchmarks/born_again.py --model-dir /tmp/born_model
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _with_teacher_model(teacher_dir: str | None) -> None:
    """Make LengthMixTeacher lean on the trained model for long text (in this process only)."""
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.training import teachers

    trained = SentimentModel.load(teacher_dir)
    recipe_logits, recipe_describe = teachers.LengthMixTeacher.logits, teachers.LengthMixTeacher.describe

    def logits(self, texts, cleaned, *, negated=False):
        base = recipe_logits(self, texts, cleaned, negated=negated)
        if negated:
            return base
        words = np.array([len(c.split()) for c in cleaned], dtype=np.float64)
        share = np.clip(words / teachers.PIECES_MIX_LENGTH, 0.0, 1.0)
        p = np.asarray(trained.predict(list(texts)), dtype=np.float64)
        z = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1 - 1e-6))
        z = np.where(np.isnan(p), base, z)  # a text without words: the recipe's teacher
        return (1 - share) * base + share * z

    teachers.LengthMixTeacher.logits = logits
    teachers.LengthMixTeacher.describe = lambda self: (
        f"born-again: {trained.name} on long text, then " + recipe_describe(self))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, help="where to save the trained model")
    parser.add_argument("--teacher-model", default=None, help="the trained model (default: shipped)")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"
                                              / "aclImdb_v1.tar.gz"))
    args = parser.parse_args(argv)
    _with_teacher_model(args.teacher_model)
    from review_scorer.cli import main as cli

    sys.argv = ["review-scorer", "train", "--data", args.data, "--model-dir", args.model_dir]
    cli()  # exits with train's status
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
