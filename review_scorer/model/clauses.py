"""Clause rules: a short review's score composed from the network's scores of its clauses.

The network reads a review left to right and learned its sense of structure from long movie
reviews. Six constructions that decide short reviews are rare there, and it misreads them:

- contrast: "The fit was great, but the fabric is itchy." The clause after "but" (or "however")
  carries the verdict. VADER has the same rule (Hutto & Gilbert 2014: words before "but" count
  half, words after it one and a half times), and Polanyi & Zaenen (2006, "Contextual valence
  shifters") describe it as a connective that changes which clause counts.
- a negated opinion verb, "I wouldn't say the food was great", "I don't think it is bad": the
  negation sits on the verb of saying or thinking, but it reverses the clause that follows (what
  linguists call neg-raising, Horn 1978). The negator is more than three words before the
  sentiment word, out of reach of the lexicon's negation window and, measured, of the network.
- a denied trouble, "No complaints whatsoever", "Never had an issue", "The staff was not rude at
  all": the negator sits on a word of blame (a noun, verb or adjective). The network learned
  negation from negated praise ("was not good") and reads the blame word as the verdict (0.37
  and 0.49 for the first and the last).
- a limit reached: "Couldn't be happier", "Couldn't ask for a better kettle", "Can't recommend it
  enough". A negated "can" says the praise (or blame) cannot go further, and the network reads
  the negation as blame (0.46 and 0.26 for the first and the last). The verdict is the reading of
  the words after the negator: from the comparative on ("happier", "more disappointed"), or,
  with an "enough" after them, all of them ("recommend it enough").
- a negated subject: "Nobody at the desk was helpful", "No one was rude", "Nothing was clean",
  "None of the dishes were good". A negative quantifier as the subject negates what is said of
  it (it takes scope over the predicate), but the network reads the predicate's words and
  leaves the quantifier at about 0.5. The verdict is the reverse of the words from the linking
  verb on, unless they compare ("No one is better", "Nothing beats it": praise).
- a comparison left unmet: "Could have been better", "The room could be cleaner", "I expected
  more", "You deserve better". A modal of what did not happen (could, should, would, might) or a
  verb of expecting, then a comparative, says the thing fell short of it; the network reads the
  comparative as praise (0.57 for the first). The verdict is the reverse of the words from the
  comparative on ("Could have been worse" is then mild praise).

On a review of at most `contrast_max_words` words with a contrast word inside it, the logit is

    (1 - contrast_mix) * z(review) + contrast_mix * (after_share * z(after) + (1 - after_share) * z(before))

split at the last contrast word; on a review (or clause) of at most `negation_max_words` words
where a negator is followed, within two words, by an opinion verb, it is

    (1 - negation_mix) * z(review) - negation_mix * negation_flip * z(the clause after the verb)

and on a review (or clause) of at most `trouble_max_words` words, each trouble word reached from a
negator through filler words only ("no", "never had a", "not a single") takes its own reading
back out, `trouble_weight` times over:

    z(review) - trouble_weight * z(the trouble word)

and, on a review (or clause) of at most `limit_max_words` words with a limit reached,

    (1 - limit_mix) * z(review) + limit_mix * z(the verdict's words)

and, on one of at most `unmet_max_words` words with a comparison left unmet,

    (1 - unmet_mix) * z(review) - unmet_mix * z(from the comparative on)

and, on one of at most `subject_max_words` words with a negated subject,

    (1 - subject_mix) * z(review) - subject_mix * subject_flip * z(from the linking verb on)

where z is the network's raw logit, and the clauses are composed the same way in turn. Every
other review keeps the network's own logit. The result is a weighted sum of the network's logits
of a few spans of the review, so explanations stay exact: each span's word weights, times its
coefficient (explain/attribution.py). Long reviews are left alone: the rules are chosen on
validation data, and on long text they cost accuracy (benchmarks/clause_rules.py; RESULTS.md
section clause_rules). The composed logit is what the later stages read as the network's: the
lexicon term is added to it, then the temperature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from review_scorer.model.calibration import finite_logits
from review_scorer.text.batching import pad_batch

CONTRAST_WORDS = ("but", "however")
# Verbs of saying, thinking and judging whose negation reverses the clause after them. Left out on
# purpose: verbs whose negation reads as surprise ("I didn't expect it to be this good", "I can't
# believe how good it was"), and "never" as their negator ("I never thought I'd love a kettle").
OPINION_VERBS = ("say", "said", "think", "thought", "call", "called", "consider", "considered",
                 "find", "found", "feel", "felt")
NEGATORS = ("not", "no", "nobody", "neither", "nor", "none", "nothing", "nowhere", "hardly",
            "rarely", "seldom", "cannot", "dont", "doesnt", "didnt", "cant", "wont", "wouldnt",
            "couldnt", "shouldnt", "isnt", "wasnt", "arent", "werent", "aint", "havent", "hasnt",
            "hadnt")
NEGATOR_SUFFIX = "n't"  # "wouldn't", "can't", "isn't": every word that ends with it negates too
# A clause holding one of these keeps the whole review's reading: "I can't say enough good things",
# "I don't think I've ever had better" praise, they do not deny.
KEEPING_WORDS = ("enough", "ever")
VERB_REACH = 2  # the verb stands at most this many words after the negator ("don't really think")
# Words of trouble that reviews deny: nouns and verbs ("no complaints", "never had an issue",
# "can't fault it", "didn't disappoint") and adjectives of blame ("not rude at all", "wasn't slow").
# Each is a word whose own reading is blame, so a negator in front of it reads as praise. Words
# whose negation reads as blame or as nothing are left out: "cheap" ("not cheap" is a price),
# "worst" ("not the worst" is faint praise at best).
TROUBLE_WORDS = (
    # nouns and verbs
    "complaint", "complaints", "complain", "complaining", "problem", "problems", "issue", "issues",
    "trouble", "troubles", "hassle", "hassles", "fault", "faults", "flaw", "flaws", "defect",
    "defects", "glitch", "glitches", "bug", "bugs", "crash", "crashes", "regret", "regrets",
    "regretted", "disappoint", "disappoints", "disappointed", "disappointment", "fail", "fails",
    "failed", "failure", "failures", "worries", "worry", "concerns", "downside", "downsides",
    "drawback", "drawbacks", "negatives", "cons", "error", "errors", "delays", "leaks", "damage",
    "scratches",
    # adjectives of blame
    "bad", "awful", "terrible", "horrible", "horrendous", "dreadful", "poor", "lousy", "rude",
    "unfriendly", "unhelpful", "dirty", "filthy", "smelly", "slow", "laggy", "buggy", "noisy",
    "loud", "cramped", "uncomfortable", "unpleasant", "painful", "difficult", "complicated",
    "confusing", "flimsy", "fragile", "broken", "faulty", "defective", "useless", "pointless",
    "disappointing", "mediocre", "bland", "tasteless", "stale", "soggy", "greasy", "overcooked",
    "undercooked", "salty", "overpriced", "boring", "annoying", "frustrating", "itchy", "scratchy",
    "ugly", "tacky", "shoddy", "sloppy", "unreliable", "inaccurate", "unusable", "wrong",
    "disgusting", "gross", "nasty", "awkward", "clunky", "sticky", "leaky", "weak")
# Negators of a trouble word, besides NEGATORS: "never" and "without" deny a trouble as well.
TROUBLE_NEGATORS = ("never", "without", "zero")
# Words that may stand between the negator and the trouble word ("not a single", "never had any
# real", "won't be", "not too", "not at all", "can't go wrong"); any other word ends the reach.
# "more", "so" and "such" are not among them: "could not be more disappointed", "never been so
# disappointed", "never had such awful service" make the blame stronger.
TROUBLE_FILLERS = ("a", "an", "any", "single", "one", "real", "major", "serious", "big", "other",
                   "the", "had", "have", "has", "having", "got", "ever", "experienced", "be", "been",
                   "to", "slightest", "significant", "too", "that", "overly", "at", "all", "go")
# A limit reached: a negated "can" ("can't", "couldn't", "cannot", "can not", "could not"), then only
# LIMIT_FILLERS, then a comparative ("couldn't be happier", "couldn't ask for a better ..."); or the
# negated "can", at least one word, then "enough" ("can't recommend it enough", "can't say enough").
LIMIT_NEGATORS = ("can't", "cannot", "couldn't", "cant", "couldnt")
LIMIT_MODALS = ("can", "could")  # followed by "not", they negate the same way
LIMIT_FILLERS = ("be", "been", "have", "ask", "for", "a", "an", "any", "possibly", "really", "even",
                 "get", "wish", "hope", "the")
COMPARATIVES = ("more", "less", "better", "worse", "greater", "nicer", "faster", "finer", "simpler",
                "smoother", "quicker", "cleaner", "softer", "stronger", "sweeter", "fresher",
                "quieter", "brighter", "warmer", "safer", "kinder", "sharper")
COMPARATIVE_SUFFIX = "ier"  # "happier", "easier", "friendlier", "tastier", "comfier"
ENOUGH_WORDS = ("enough",)
# A negated subject: one of SUBJECT_NEGATORS, or a word of SUBJECT_FIRST then one of SUBJECT_SECOND
# ("no one", "none of"), then a linking verb (SUBJECT_VERBS) and at least one word, none of the
# words after the subject a comparative or one of SUBJECT_KEEPING ("no one is better", "nothing
# beats it", "nothing compares" praise). Only a linking verb says what the subject is like:
# "nobody was helpful" reverses "was helpful", while "no one has responded", "nothing happened"
# and "nobody apologised" tell of a service that did not come, a complaint the reversal would
# misread (measured on the tweets). "none" alone and "no" + a noun are left out: "second to none"
# praises, "no refund" is a complaint in itself; "neither" too ("but neither is being on hold").
SUBJECT_NEGATORS = ("nobody", "noone", "nothing")
SUBJECT_FIRST, SUBJECT_SECOND = ("no", "none"), ("one", "of")
# A comparison left unmet: one of UNMET_MODALS or UNMET_VERBS, then only UNMET_FILLERS, then a
# comparative ("could have been better", "should be a lot cheaper", "expected more", "hoped for
# better"). "even" is no filler: "could be even better" praises what is already good. A negated
# modal ("couldn't be better") is the limit-reached rule's, which comes first.
UNMET_MODALS = ("could", "should", "would", "might")
UNMET_VERBS = ("expected", "expect", "hoped", "hope", "wanted", "deserve", "deserved", "deserves")
UNMET_FILLERS = ("be", "have", "been", "a", "lot", "much", "bit", "little", "far", "way", "slightly",
                 "somewhat", "for", "so", "something", "done", "made", "tasted", "looked", "felt",
                 "it", "to")
SUBJECT_VERBS = ("is", "was", "are", "were", "be", "been", "seemed", "seems", "looked", "looks",
                 "felt", "feels", "tasted", "tastes", "smelled", "smells", "sounded", "sounds")
SUBJECT_KEEPING = ("beat", "beats", "beating", "compare", "compares", "compared", "rival", "rivals",
                   "top", "tops", "match", "matches", "else", "short")

# The parameters chosen on validation data (benchmarks/clause_rules.py, RESULTS.md clause_rules).
CHOSEN = {"contrast_max_words": 30, "contrast_mix": 1.0, "after_share": 0.85,
          "negation_max_words": 15, "negation_mix": 0.75, "negation_flip": 1.0,
          "trouble_max_words": 15, "trouble_weight": 1.0, "limit_max_words": 10, "limit_mix": 0.75,
          "subject_max_words": 10, "subject_mix": 0.75, "subject_flip": 1.0,
          "unmet_max_words": 10, "unmet_mix": 0.5}

# The word lists as meta.json records them (the suffixes are strings, the rest lists of words).
WORD_LISTS = {
    "contrast_words": CONTRAST_WORDS, "opinion_verbs": OPINION_VERBS, "negators": NEGATORS,
    "negator_suffix": NEGATOR_SUFFIX, "keeping_words": KEEPING_WORDS, "trouble_words": TROUBLE_WORDS,
    "trouble_negators": TROUBLE_NEGATORS, "trouble_fillers": TROUBLE_FILLERS,
    "limit_negators": LIMIT_NEGATORS, "limit_modals": LIMIT_MODALS, "limit_fillers": LIMIT_FILLERS,
    "comparatives": COMPARATIVES, "comparative_suffix": COMPARATIVE_SUFFIX,
    "enough_words": ENOUGH_WORDS, "subject_negators": SUBJECT_NEGATORS, "subject_first": SUBJECT_FIRST,
    "subject_second": SUBJECT_SECOND, "subject_verbs": SUBJECT_VERBS,
    "subject_keeping": SUBJECT_KEEPING, "unmet_modals": UNMET_MODALS, "unmet_verbs": UNMET_VERBS,
    "unmet_fillers": UNMET_FILLERS}
_SUFFIXES = ("negator_suffix", "comparative_suffix")

Segment = tuple[float, int, int]  # (coefficient, start, end): coefficient * z(ids[start:end])


def _negator_test(words: Sequence[str], suffix: str) -> Callable[[str], bool]:
    words = frozenset(words)
    return lambda token: token in words or (bool(suffix) and token.endswith(suffix))


@dataclass
class ClauseRules:
    """The rules for one vocabulary: which ids are contrast words, opinion verbs and negators."""

    contrast: np.ndarray  # bool [vocab_size]
    verb: np.ndarray  # bool [vocab_size]
    negator: np.ndarray  # bool [vocab_size]
    keeping: np.ndarray | None = None  # bool [vocab_size]: words that stop the negation rule
    trouble: np.ndarray | None = None  # bool [vocab_size]: trouble words (TROUBLE_WORDS)
    trouble_negator: np.ndarray | None = None  # bool [vocab_size]: their negators (+ TROUBLE_NEGATORS)
    filler: np.ndarray | None = None  # bool [vocab_size]: TROUBLE_FILLERS
    limit_negator: np.ndarray | None = None  # bool [vocab_size]: LIMIT_NEGATORS
    limit_modal: np.ndarray | None = None  # bool [vocab_size]: LIMIT_MODALS
    limit_filler: np.ndarray | None = None  # bool [vocab_size]: LIMIT_FILLERS
    comparative: np.ndarray | None = None  # bool [vocab_size]: COMPARATIVES and COMPARATIVE_SUFFIX
    enough: np.ndarray | None = None  # bool [vocab_size]: ENOUGH_WORDS
    subject: np.ndarray | None = None  # bool [vocab_size]: SUBJECT_NEGATORS
    subject_first: np.ndarray | None = None  # bool [vocab_size]: SUBJECT_FIRST ("no" one, "none" of)
    subject_second: np.ndarray | None = None  # bool [vocab_size]: SUBJECT_SECOND
    subject_verb: np.ndarray | None = None  # bool [vocab_size]: SUBJECT_VERBS
    subject_keeping: np.ndarray | None = None  # bool [vocab_size]: SUBJECT_KEEPING
    unmet: np.ndarray | None = None  # bool [vocab_size]: UNMET_MODALS + UNMET_VERBS
    unmet_filler: np.ndarray | None = None  # bool [vocab_size]: UNMET_FILLERS
    contrast_max_words: int = CHOSEN["contrast_max_words"]
    contrast_mix: float = CHOSEN["contrast_mix"]
    after_share: float = CHOSEN["after_share"]
    negation_max_words: int = CHOSEN["negation_max_words"]
    negation_mix: float = CHOSEN["negation_mix"]
    negation_flip: float = CHOSEN["negation_flip"]
    trouble_max_words: int = CHOSEN["trouble_max_words"]
    trouble_weight: float = CHOSEN["trouble_weight"]
    limit_max_words: int = CHOSEN["limit_max_words"]
    limit_mix: float = CHOSEN["limit_mix"]
    subject_max_words: int = CHOSEN["subject_max_words"]
    subject_mix: float = CHOSEN["subject_mix"]
    subject_flip: float = CHOSEN["subject_flip"]
    unmet_max_words: int = CHOSEN["unmet_max_words"]
    unmet_mix: float = CHOSEN["unmet_mix"]
    # the word lists the masks were made from, as meta.json records them
    words: dict = field(default_factory=lambda: {
        k: v if isinstance(v, str) else list(v) for k, v in WORD_LISTS.items()})
    _reach: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        none = np.zeros(len(self.negator), dtype=bool)
        for name in ("keeping", "trouble", "trouble_negator", "filler", "limit_negator", "limit_modal",
                     "limit_filler", "comparative", "enough", "subject", "subject_first",
                     "subject_second", "subject_verb", "subject_keeping", "unmet", "unmet_filler"):
            if getattr(self, name) is None:
                setattr(self, name, none)
        self._denies = self.trouble.any() and self.trouble_weight != 0.0
        self._limits = self.limit_negator.any() and self.limit_mix != 0.0
        self._subjects = self.subject.any() and self.subject_mix != 0.0
        self._unmet = self.unmet.any() and self.unmet_mix != 0.0
        self._reach = max(self.contrast_max_words if self.contrast.any() else 0,
                          self.negation_max_words if self.verb.any() else 0,
                          self.trouble_max_words if self._denies else 0,
                          self.limit_max_words if self._limits else 0,
                          self.subject_max_words if self._subjects else 0,
                          self.unmet_max_words if self._unmet else 0)

    @classmethod
    def for_vocabulary(cls, tokens: Sequence[str], **params) -> ClauseRules:
        return cls._from_words(tokens, {k: v if isinstance(v, str) else list(v)
                                        for k, v in WORD_LISTS.items()}, params)

    @classmethod
    def _from_words(cls, tokens: Sequence[str], words: dict, params: dict) -> ClauseRules:
        """The masks of a vocabulary from a record of word lists (missing lists: no such words)."""
        def listed(key: str, suffix: str = "") -> np.ndarray:
            return _marks(tokens, _negator_test(words.get(key, []), suffix))

        suffix, c_suffix = words.get("negator_suffix", ""), words.get("comparative_suffix", "")
        negators = list(words.get("negators", []))
        listed_comparative = _negator_test(words.get("comparatives", []), "")
        return cls(listed("contrast_words"), listed("opinion_verbs"), listed("negators", suffix),
                   listed("keeping_words"), listed("trouble_words"),
                   _marks(tokens, _negator_test(negators + list(words.get("trouble_negators", [])),
                                                suffix)),
                   listed("trouble_fillers"), listed("limit_negators"), listed("limit_modals"),
                   listed("limit_fillers"),
                   _marks(tokens, lambda t: listed_comparative(t)  # the suffix on 5+ letters
                          or (bool(c_suffix) and len(t) >= 5 and t.endswith(c_suffix))),
                   listed("enough_words"), listed("subject_negators"), listed("subject_first"),
                   listed("subject_second"), listed("subject_verbs"),
                   listed("subject_keeping"),
                   _marks(tokens, _negator_test(list(words.get("unmet_modals", []))
                                                + list(words.get("unmet_verbs", [])), "")),
                   listed("unmet_fillers"), **params, words=words)

    # ------------------------------------------------------------------ plans

    def plan(self, ids: np.ndarray) -> list[Segment] | None:
        """The spans whose network logits, times their coefficients, add up to this review's
        composed logit; None when no rule applies (the network's own logit stands)."""
        ids = np.asarray(ids)
        if not 0 < len(ids) <= self._reach:
            return None
        out: list[Segment] = []
        self._compose(ids, 0, len(ids), 1.0, out)
        return None if out == [(1.0, 0, len(ids))] else out

    def _compose(self, ids: np.ndarray, start: int, end: int, coef: float, out: list[Segment]) -> None:
        if coef == 0.0:  # a span that counts for nothing is not scored
            return
        n = end - start
        if n <= self.contrast_max_words:
            inner = np.flatnonzero(self.contrast[ids[start + 1:end - 1]])
            if len(inner):
                at = start + 1 + int(inner[-1])
                self._keep_whole(start, end, coef, self.contrast_mix, out)
                mix = coef * self.contrast_mix
                self._compose(ids, at + 1, end, mix * self.after_share, out)
                self._compose(ids, start, at, mix * (1.0 - self.after_share), out)
                return
        if self._limits and n <= self.limit_max_words:
            verdict = self._limit_verdict(ids, start, end)
            if verdict is not None:
                self._keep_whole(start, end, coef, self.limit_mix, out)
                self._compose(ids, verdict, end, coef * self.limit_mix, out)
                return
        if self._unmet and n <= self.unmet_max_words:
            verdict = self._unmet_verdict(ids, start, end)
            if verdict is not None:
                self._keep_whole(start, end, coef, self.unmet_mix, out)
                self._compose(ids, verdict, end, -coef * self.unmet_mix, out)
                return
        if self._subjects and n <= self.subject_max_words:
            after = self._negated_subject(ids, start, end)
            if after is not None:
                self._keep_whole(start, end, coef, self.subject_mix, out)
                self._compose(ids, after, end, -coef * self.subject_mix * self.subject_flip, out)
                return
        if n <= self.negation_max_words:
            verb = self._negated_verb(ids, start, end)
            if verb is not None:
                self._keep_whole(start, end, coef, self.negation_mix, out)
                self._compose(ids, verb + 1, end, -coef * self.negation_mix * self.negation_flip, out)
                return
        out.append((coef, start, end))
        if self._denies and n <= self.trouble_max_words:
            weight = -coef * self.trouble_weight
            out.extend((weight, t, t + 1) for t in self._denied_troubles(ids, start, end))

    @staticmethod
    def _keep_whole(start: int, end: int, coef: float, mix: float, out: list[Segment]) -> None:
        if mix < 1.0:
            out.append((coef * (1.0 - mix), start, end))

    def _negated_verb(self, ids: np.ndarray, start: int, end: int) -> int | None:
        """The position of the first opinion verb within VERB_REACH words after a negator, with
        at least one word after it and no keeping word ("enough", "ever") there; None when there
        is none."""
        for i in np.flatnonzero(self.negator[ids[start:end]]) + start:
            for j in range(i + 1, min(i + 1 + VERB_REACH, end - 1)):
                if self.verb[ids[j]]:
                    return None if self.keeping[ids[j + 1:end]].any() else j
        return None

    def _limit_verdict(self, ids: np.ndarray, start: int, end: int) -> int | None:
        """Where the verdict's words start when a negated "can" says a limit is reached (the
        comparative, or the word after the negator when an "enough" follows); else None."""
        for i in range(start, end - 1):
            if not (self.limit_negator[ids[i]]
                    or (i > start and self.limit_modal[ids[i - 1]] and self.negator[ids[i]])):
                continue
            j = self._comparative_after(ids, i, end, self.limit_filler)
            if j is not None:
                return j
            if self.enough[ids[i + 2:end]].any():
                return i + 1
        return None

    def _unmet_verdict(self, ids: np.ndarray, start: int, end: int) -> int | None:
        """Where the comparative starts when a modal of what did not happen or a verb of expecting
        reaches it through UNMET_FILLERS only, with no negator before it in the clause; else None."""
        for i in np.flatnonzero(self.unmet[ids[start:end - 1]]) + start:
            if self.negator[ids[start:i + 2]].any():
                return None
            j = self._comparative_after(ids, i, end, self.unmet_filler)
            if j is not None:
                return j
        return None

    def _comparative_after(self, ids: np.ndarray, i: int, end: int, fillers: np.ndarray) -> int | None:
        """The position of a comparative that follows position i through `fillers` only."""
        j = i + 1
        while j < end and fillers[ids[j]]:
            j += 1
        return int(j) if j < end and self.comparative[ids[j]] else None

    def _negated_subject(self, ids: np.ndarray, start: int, end: int) -> int | None:
        """Where what is said of a negated subject starts ("nobody", "nothing", "no one", "none
        of"): the linking verb after the first such subject, when a word follows the verb and
        none of the words after the subject compares; else None."""
        for i in range(start, end - 1):
            if self.subject[ids[i]]:
                after = i + 1
            elif self.subject_first[ids[i]] and self.subject_second[ids[i + 1]]:
                after = i + 2
            else:
                continue
            rest = ids[after:end]
            verbs = np.flatnonzero(self.subject_verb[rest[:-1]])
            if not len(verbs) or (self.comparative[rest] | self.subject_keeping[rest]).any():
                return None
            return after + int(verbs[0])
        return None

    def _denied_troubles(self, ids: np.ndarray, start: int, end: int) -> list[int]:
        """The positions of the trouble words a negator reaches through filler words only."""
        found = []
        for t in np.flatnonzero(self.trouble[ids[start:end]]) + start:
            i = t - 1
            while i >= start and self.filler[ids[i]] and not self.trouble_negator[ids[i]]:
                i -= 1
            if i >= start and self.trouble_negator[ids[i]]:
                found.append(int(t))
        return found

    def plans(self, sequences: Sequence[np.ndarray] | np.ndarray) -> dict[int, list[Segment]]:
        """Each review's plan, for the reviews a rule applies to (a list of id arrays or a
        right-padded [batch, steps] array); the others are looked at by a vectorised test only."""
        out = {}
        for k in self._candidates(sequences).tolist():
            ids = np.asarray(sequences[k])
            plan = self.plan(ids[: np.count_nonzero(ids)])  # the ids before any padding
            if plan is not None:
                out[k] = plan
        return out

    def _candidates(self, sequences: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """The reviews short enough for a rule that hold a contrast word or a negator."""
        if not len(sequences) or not self._reach:
            return np.zeros(0, dtype=np.int64)
        if isinstance(sequences, np.ndarray) and sequences.ndim == 2:  # a padded batch, as scored
            ids, short = sequences, np.arange(len(sequences))
        else:  # only the short rows are padded into one matrix: a list may hold long reviews
            lengths = np.fromiter(map(np.count_nonzero, sequences), dtype=np.int64, count=len(sequences))
            short = np.flatnonzero(lengths <= self._reach)
            ids = pad_batch([sequences[k] for k in short])
        ids = np.minimum(ids, len(self.contrast) - 1)
        length = np.count_nonzero(ids, axis=1)
        marked = (self.contrast[ids] | self.negator[ids] | self.trouble_negator[ids]
                  | self.subject[ids] | self.subject_first[ids] | self.unmet[ids]).any(axis=1)
        return short[marked & (length > 0) & (length <= self._reach)]

    # ------------------------------------------------------------------ scores

    def compose(self, probabilities: np.ndarray, sequences: Sequence[np.ndarray] | np.ndarray,
                network: Callable[[list[np.ndarray]], np.ndarray]) -> np.ndarray:
        """The network's probabilities with the rules applied: `network` scores a list of id
        arrays (the spans) with the same network that gave `probabilities`."""
        probabilities = np.asarray(probabilities)
        found = self.plans(sequences)
        if not found:
            return probabilities
        z = finite_logits(np.asarray(network(plan_spans(found, sequences)), dtype=np.float64))
        out = np.array(probabilities, dtype=np.result_type(probabilities, np.float32), copy=True)
        at = 0
        for k, plan in found.items():
            logit = sum(c * z[at + i] for i, (c, _, _) in enumerate(plan))
            at += len(plan)
            out[k] = 1.0 / (1.0 + np.exp(-logit))
        return out

    # ------------------------------------------------------------------ saved form

    def meta(self) -> dict:
        """What meta.json records: the parameters and word lists; load rebuilds the id masks."""
        return {**{k: list(v) if isinstance(v, list) else v for k, v in self.words.items()},
                **{k: getattr(self, k) for k in CHOSEN}}

    @classmethod
    def from_meta(cls, meta: dict, tokens: Sequence[str]) -> ClauseRules:
        """Rebuild from meta.json's record; ValueError when it is not a valid record."""
        if not isinstance(meta, dict):
            raise ValueError("not a mapping")
        params = {}
        for key, default in CHOSEN.items():
            value = meta.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise ValueError(f"{key} is not a number")
            params[key] = type(default)(value)
        # a record made before a rule lacks its lists: that rule then finds no words
        words = {k: meta.get(k, "" if k in _SUFFIXES else []) for k in WORD_LISTS}
        if not all(isinstance(v, str) if k in _SUFFIXES
                   else isinstance(v, list) and all(isinstance(w, str) for w in v)
                   for k, v in words.items()):
            raise ValueError("word lists are not lists of words")
        return cls._from_words(tokens, words, params)


def plan_spans(plans: dict[int, list[Segment]], sequences) -> list[np.ndarray]:
    """The id spans the plans read, in plan order (each review's, then each of its segments)."""
    return [np.asarray(sequences[k])[s:e] for k, plan in plans.items() for _, s, e in plan]


def _marks(tokens: Sequence[str], test: Callable[[str], bool]) -> np.ndarray:
    out = np.array([test(t) for t in tokens], dtype=bool)
    out[:2] = False  # padding and unknown
    return out
