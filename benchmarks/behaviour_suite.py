"""A behavioural test suite for short reviews, in the manner of CheckList (Ribeiro et al. 2020).

Every sentence is generated here from this project's own templates and word lists: simple
opinions, negation, contrast ("..., but ..."), intensifiers and hedges, recommendation idioms,
star phrases, and plain facts that are good or bad news, over product, restaurant, hotel, app
and clothing vocabulary. Each case has a capability name and a binary label (1 = positive).

    python benchmarks/behaviour_suite.py                       # shipped model + VADER, table
    python benchmarks/behaviour_suite.py --model-dir DIR --write-results

The suite is a benchmark (the whole suite, with VADER beside the model); tests/test_behaviour.py
runs a small slice of it against the shipped model. Model choices never train on it.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# (thing, plural?) per domain; adjectives that fit any of them.
THINGS = {
    "product": ["kettle", "vacuum", "blender", "charger", "lamp", "phone case", "headphones"],
    "restaurant": ["food", "pasta", "soup", "service", "pizza", "dessert", "burger"],
    "hotel": ["room", "bed", "breakfast", "staff", "location", "bathroom", "pool"],
    "app": ["app", "update", "interface", "checkout", "search", "login screen"],
    "clothing": ["dress", "jacket", "fabric", "fit", "sweater", "jeans"],
}
POSITIVE = ["great", "excellent", "lovely", "fantastic", "good", "comfortable", "reliable",
            "delicious", "friendly", "clean", "helpful", "perfect", "wonderful", "solid"]
NEGATIVE = ["terrible", "awful", "bad", "disappointing", "dirty", "rude", "flimsy", "slow",
            "cheap-looking", "useless", "horrible", "poor", "broken", "bland"]
FITS = {  # adjectives that read naturally with each domain's nouns
    "product": (["great", "excellent", "good", "reliable", "solid", "perfect", "fantastic"],
                ["terrible", "flimsy", "useless", "bad", "poor", "awful", "disappointing"]),
    "restaurant": (["delicious", "great", "excellent", "lovely", "wonderful", "good", "friendly"],
                   ["bland", "awful", "terrible", "bad", "disappointing", "slow", "horrible"]),
    "hotel": (["clean", "comfortable", "lovely", "friendly", "great", "wonderful", "helpful"],
              ["dirty", "rude", "awful", "terrible", "disappointing", "bad", "horrible"]),
    "app": (["great", "reliable", "fast", "helpful", "excellent", "good", "solid"],
            ["slow", "useless", "terrible", "broken", "awful", "bad", "disappointing"]),
    "clothing": (["lovely", "comfortable", "perfect", "great", "beautiful", "good", "soft"],
                 ["cheap-looking", "awful", "terrible", "disappointing", "bad", "poor", "itchy"]),
}
INTENSIFIERS = ["very", "really", "extremely", "incredibly", "truly", "absolutely"]


@dataclass(frozen=True)
class Case:
    text: str
    label: int
    capability: str


def _simple(rng) -> list[Case]:
    cases = []
    for domain, things in THINGS.items():
        pos, neg = FITS[domain]
        for thing in things:
            verb = "were" if thing.endswith("s") and thing not in ("glass",) else "was"
            cases.append(Case(f"The {thing} {verb} {rng.choice(pos)}.", 1, "simple"))
            cases.append(Case(f"The {thing} {verb} {rng.choice(neg)}.", 0, "simple"))
    return cases


def _negation(rng) -> list[Case]:
    cases = []
    forms_flip = ["The {t} {v} not {a}.", "The {t} {v}n't {a} at all.", "The {t} {v} not {a} at all.",
                  "I wouldn't say the {t} {v} {a}.", "The {t} {v} never {a}."]
    for domain, things in THINGS.items():
        pos, neg = FITS[domain]
        for thing in things:
            verb = "were" if thing.endswith("s") else "was"
            form = rng.choice(forms_flip)
            cases.append(Case(form.format(t=thing, v=verb, a=rng.choice(pos)), 0, "negation"))
            form = rng.choice(forms_flip)
            cases.append(Case(form.format(t=thing, v=verb, a=rng.choice(neg)), 1, "negation"))
    fixed = [("Not bad at all.", 1), ("Not bad at all", 1), ("Not good at all.", 0),
             ("Nothing to complain about.", 1), ("No complaints whatsoever.", 1),
             ("Not worth the money.", 0), ("Not worth the price.", 0),
             ("I can't fault it.", 1), ("Couldn't be happier.", 1), ("Couldn't be happier with it.", 1),
             ("Not impressed.", 0), ("Not impressed at all.", 0), ("I was not disappointed.", 1),
             ("Not the best, not the worst, but I would not buy it again.", 0),
             ("Never had a problem with it.", 1), ("No issues at all so far.", 1),
             ("Not a single problem in a year of use.", 1), ("Not happy with this purchase.", 0),
             ("Didn't like it.", 0), ("I did not enjoy our stay.", 0), ("Did not work.", 0),
             ("It doesn't work.", 0), ("Does not disappoint.", 1), ("Can't recommend it enough.", 1)]
    # A negated subject (added with the negated-subject clause rule, 2026-12-03: these sentences
    # were written along with it, so the suite's number for them is not an independent estimate).
    fixed += [("Nobody at the front desk was helpful.", 0), ("No one on the staff was friendly.", 0),
              ("Nothing about the room was clean.", 0), ("None of the dishes were good.", 0),
              ("No one was rude to us.", 1), ("Nothing in the box was broken.", 1),
              ("Nothing about the fit is wrong.", 1), ("None of the seams were loose.", 1),
              ("No one does it better.", 1), ("Nothing happened when I pressed the button.", 0)]
    # A comparison left unmet (added with the unmet-comparison clause rule, 2026-12-03, the same way).
    fixed += [("The pasta could have been better.", 0), ("The staff could have been friendlier.", 0),
              ("I expected better from this brand.", 0), ("Our guests deserved better service.", 0),
              ("The checkout should be a lot simpler.", 0), ("Honestly, I hoped for more.", 0),
              ("The jacket could not be warmer.", 1), ("The soup could be even better with salt.", 1)]
    cases += [Case(text, label, "negation") for text, label in fixed]
    return cases


def _contrast(rng) -> list[Case]:
    cases = []
    for domain, things in THINGS.items():
        pos, neg = FITS[domain]
        for a, b in itertools.islice(itertools.permutations(things, 2), 0, 30, 5):
            va = "were" if a.endswith("s") else "was"
            vb = "were" if b.endswith("s") else "was"
            cases.append(Case(f"The {a} {va} {rng.choice(pos)}, but the {b} {vb} {rng.choice(neg)}.",
                              0, "contrast"))
            cases.append(Case(f"The {a} {va} {rng.choice(neg)}, but the {b} {vb} {rng.choice(pos)}.",
                              1, "contrast"))
    fixed = [("Expensive, but worth every penny.", 1), ("Cheap, but it broke within a week.", 0),
             ("It looks nice, but it stopped working after two days.", 0),
             ("The wait was long, but the meal was worth it.", 1),
             ("Although the room was small, it was spotless and the staff were lovely.", 1),
             ("Although the app looks nice, it crashes constantly.", 0),
             ("I wanted to love it, but it was a letdown.", 0),
             ("I had my doubts, but it turned out to be excellent.", 1)]
    cases += [Case(text, label, "contrast") for text, label in fixed]
    return cases


def _intensity(rng) -> list[Case]:
    cases = []
    for domain, things in THINGS.items():
        pos, neg = FITS[domain]
        for thing in rng.sample(things, 4):
            verb = "were" if thing.endswith("s") else "was"
            cases.append(Case(f"The {thing} {verb} {rng.choice(INTENSIFIERS)} {rng.choice(pos)}!",
                              1, "intensifier"))
            cases.append(Case(f"The {thing} {verb} {rng.choice(INTENSIFIERS)} {rng.choice(neg)}!",
                              0, "intensifier"))
            cases.append(Case(f"The {thing} {verb} a bit {rng.choice(['disappointing', 'poor', 'weak'])}.",
                              0, "intensifier"))
            cases.append(Case(f"The {thing} {verb} pretty {rng.choice(['good', 'nice', 'decent'])}.",
                              1, "intensifier"))
    return cases


IDIOMS = [
    ("Would recommend to anyone.", 1), ("Highly recommended.", 1), ("I would definitely recommend it.", 1),
    ("Would not recommend.", 0), ("I would not recommend this to anyone.", 0), ("Do not recommend.", 0),
    ("Avoid at all costs.", 0), ("Avoid this place.", 0), ("Stay away.", 0),
    ("Worth every penny.", 1), ("Money well spent.", 1), ("Great value for money.", 1),
    ("Waste of money.", 0), ("A complete waste of time.", 0), ("Save your money.", 0),
    ("Will definitely be back.", 1), ("We will be coming back.", 1), ("Can't wait to go back.", 1),
    ("Never again.", 0), ("We won't be back.", 0), ("Never coming back here.", 0),
    ("Does exactly what it says.", 1), ("Does the job perfectly.", 1), ("Works like a charm.", 1),
    ("Returned it the next day.", 0), ("Sent it back.", 0), ("Asked for a refund.", 0),
    ("Exceeded my expectations.", 1), ("Fell short of my expectations.", 0),
    ("Best purchase I've made all year.", 1), ("Worst purchase I've ever made.", 0),
    ("A hidden gem.", 1), ("Total rip-off.", 0), ("Five stars, no question.", 1),
    ("Love it!", 1), ("Hate it.", 0), ("Life saver!", 1), ("What a joke.", 0),
    ("Buy it, you won't regret it.", 1), ("Don't waste your money.", 0),
    ("Two thumbs up.", 1), ("Thumbs down.", 0), ("Highly disappointed.", 0), ("Pleasantly surprised.", 1),
    ("Go elsewhere.", 0), ("Would buy again.", 1), ("Would never buy again.", 0),
    ("I keep coming back.", 1), ("Customer for life.", 1), ("Lost a customer.", 0),
]
STARS = [
    ("Five stars!", 1), ("5 stars.", 1), ("5/5", 1), ("10/10 would buy again.", 1), ("Five stars.", 1),
    ("Solid five stars.", 1), ("Easily five stars.", 1), ("Four stars.", 1), ("4 stars, very happy.", 1),
    ("One star.", 0), ("1 star.", 0), ("1/5", 0), ("Zero stars if I could.", 0), ("One star, avoid.", 0),
    ("Two stars at most.", 0), ("2 stars, disappointing.", 0), ("0/10.", 0), ("Minus five stars.", 0),
    ("Only giving one star because I have to.", 0), ("Would give six stars if I could.", 1),
]
FACTS = [
    ("Battery died after two days.", 0), ("Stopped working after a week.", 0), ("Arrived broken.", 0),
    ("It broke the first time I used it.", 0), ("The app crashes every time I open it.", 0),
    ("Still waiting for my refund.", 0), ("We waited an hour for our food.", 0),
    ("The zipper fell off after one wash.", 0), ("Shrank two sizes in the wash.", 0),
    ("Found a hair in my soup.", 0), ("There were stains on the sheets.", 0),
    ("The charger stopped charging after a month.", 0), ("It leaks everywhere.", 0),
    ("Logs me out every five minutes.", 0), ("The screen cracked within a week.", 0),
    ("Our table wasn't ready and nobody apologised.", 0), ("The shower had no hot water.", 0),
    ("It took three weeks to arrive.", 0), ("Colour faded after two washes.", 0),
    ("Customer support never replied.", 0),
    ("Reliable and quick to boil. A fine kettle for the price.", 1),
    ("Fits true to size and feels soft.", 1), ("Arrived early and well packed.", 1),
    ("Battery lasts all week.", 1), ("The staff went out of their way to help us.", 1),
    ("Portions are generous and prices fair.", 1), ("The bed was so comfy I overslept.", 1),
    ("Loads quickly and never crashes.", 1), ("Still going strong after three years.", 1),
    ("Keeps coffee hot all morning.", 1), ("Washes well and keeps its shape.", 1),
    ("They replaced it free of charge within a day.", 1), ("Our waiter remembered our names.", 1),
    ("Set up took two minutes.", 1), ("Quiet, powerful and easy to clean.", 1),
    ("The view from our room was stunning.", 1), ("Fast delivery, exactly as described.", 1),
    ("Sync works flawlessly across my devices.", 1), ("Everything was fresh and full of flavour.", 1),
    ("Gets compliments every time I wear it.", 1),
]


def build_suite(seed: int = 7) -> list[Case]:
    """Every case of the suite, in a fixed order (the seed picks adjectives and pairs)."""
    rng = random.Random(seed)
    cases = _simple(rng) + _negation(rng) + _contrast(rng) + _intensity(rng)
    cases += [Case(t, y, "idiom") for t, y in IDIOMS]
    cases += [Case(t, y, "stars") for t, y in STARS]
    cases += [Case(t, y, "facts") for t, y in FACTS]
    return cases


def vader_scores(texts: list[str]):
    import numpy as np
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    # compound >= 0.05 is VADER's own positive rule; map it to 0.5 for the same threshold.
    return np.array([(analyzer.polarity_scores(t)["compound"] + 1) / 2 + (0.5 - 0.525) for t in texts])


def accuracy_table(cases: list[Case], scores_by_model: dict) -> list[tuple]:
    import numpy as np

    labels = np.array([c.label for c in cases])
    caps = sorted({c.capability for c in cases})
    rows = []
    for cap in [*caps, "all"]:
        mask = np.array([cap == "all" or c.capability == cap for c in cases])
        row = [cap, int(mask.sum())]
        for scores in scores_by_model.values():
            row.append(float(np.mean((np.asarray(scores)[mask] >= 0.5) == labels[mask])))
        rows.append(tuple(row))
    return rows


SECTION_NOTE = (
    "{n} sentences from this project's own templates (benchmarks/behaviour_suite.py). The target "
    "is 90% over all of them. A model directory from an earlier commit is unpacked with, e.g., "
    "`git archive a11a648 review_scorer/default_model | tar -x -C /tmp/oldmodel`.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", action="append", default=None,
                        help="model directory (repeatable; default: the shipped model)")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args(argv)
    from review_scorer.model.sentiment import SentimentModel

    cases = build_suite()
    texts = [c.text for c in cases]
    scores = {}
    for directory in args.model_dir or [None]:
        model = SentimentModel.load(directory)
        made = str(model.meta.get("created_at", ""))[:16].replace("T", " ")  # two a day happen
        key = f"{model.name} of {made}"
        if key in scores:  # one network with other later stages (an edited copy): name the folder
            key = f"{key} ({directory})"
        scores[key] = model.predict(texts)
    scores["VADER"] = vader_scores(texts)
    rows = accuracy_table(cases, scores)
    header = ["capability", "n", *scores]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join([row[0], str(row[1])] + [f"{v:.1%}" for v in row[2:]]) + " |")
    table = "\n".join(lines)
    print(table)
    if args.show_errors:
        first = next(iter(scores.values()))
        for case, score in zip(cases, first):
            if (score >= 0.5) != bool(case.label):
                print(f"{score:.2f}  {case.label}  {case.capability:12s} {case.text}")
    if args.write_results:
        from _results import write_section

        write_section("behaviour_suite", "## Behavioural suite: short reviews (accuracy, threshold 0.5)\n\n"
                      + table + "\n\n" + SECTION_NOTE.format(n=len(cases)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
