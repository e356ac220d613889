"""Pseudo-queries from passages alone, without a generator model.

A user with a corpus and no judged queries can still train a reranker for it: each passage yields
a query-like text, and the passage it came from is that query's likely answer. Two shapes:

- ``sentence`` (inverse cloze task, Lee et al. 2019): one sentence of the passage, cut to its first
  `max_words` words, is the query; the passage *without* that sentence is the positive, so the
  model cannot win by copying words. Passages of one sentence give no query of this shape.
- ``terms``: the passage's most salient words (highest inverse document frequency in the corpus,
  stopwords out), `min_terms`..`max_terms` of them in their passage order -- the keyword queries
  that search logs are full of. The positive is the whole passage.

What is skipped, and why, is counted (`SkipCounts`): empty or very short passages, a duplicate of
an earlier passage's text, passages held out (for example a tune split's candidates), and
one-sentence passages for the ``sentence`` shape.
"""
from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from crossrank.data.records import Passage

STRATEGIES = ("sentence", "terms")

# after . ! ? and a space before a capital, digit or quote; or with no space, after a lower-case word
# and before a capitalised one ("disabilities.A line scan": SciFact abstracts join sentences so)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|(?<=[a-z0-9)\]][a-z0-9)\]][.!?])(?=[A-Z])")
_WORD = re.compile(r"\b\w\w+\b")
# English function words: never a salient term (bm25s' list is a superset; this one keeps the module dependency-free)
STOPWORDS = frozenset("""a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or
other our ours ourselves out over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves also may many much one two use used using within without per via like can""".split())


@dataclass(frozen=True, slots=True)
class PseudoQuery:
    """A query made from passage `doc_id`; `positive` is the text the model should find for it."""

    query_id: str
    text: str
    doc_id: str
    positive: str


@dataclass
class SkipCounts:
    """How many passages gave a query, and how many were skipped for each reason."""

    passages: int = 0
    made: int = 0
    skipped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        reasons = ", ".join(f"{n:,} {why}" for why, n in self.skipped.most_common())
        return f"{self.made:,} pseudo-queries from {self.passages:,} passages" + (f"; skipped: {reasons}" if reasons else "")


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage: split after . ! ? followed by a space and a capital, digit or quote."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def document_frequencies(passages: Iterable[Passage]) -> tuple[Counter, int]:
    """Lower-cased word -> number of passages holding it, and the number of passages."""
    df: Counter = Counter()
    n = 0
    for p in passages:
        df.update(set(words(p.text)))
        n += 1
    return df, n


def sentence_query(text: str, rng: random.Random, max_words: int, min_words: int) -> tuple[str, str] | None:
    """(query, positive) of the inverse cloze shape, or None where the passage has a single usable sentence."""
    sentences = split_sentences(text)
    usable = [i for i, s in enumerate(sentences) if len(s.split()) >= min_words]
    if len(sentences) < 2 or not usable:
        return None
    i = rng.choice(usable)
    query = " ".join(sentences[i].split()[:max_words]).rstrip(".!?,;:")
    rest = " ".join(s for j, s in enumerate(sentences) if j != i)
    return query, rest


def terms_query(text: str, rng: random.Random, idf: dict[str, float], min_terms: int, max_terms: int) -> str | None:
    """The passage's most salient distinct words (by idf), in passage order, or None where too few are left."""
    seen: dict[str, int] = {}
    for position, w in enumerate(words(text)):
        if w not in STOPWORDS and not w.isdigit() and w not in seen:
            seen[w] = position
    if len(seen) < min_terms:
        return None
    k = rng.randint(min_terms, min(max_terms, len(seen)))
    best = sorted(seen, key=lambda w: (-idf.get(w, 0.0), seen[w]))[:k]
    return " ".join(sorted(best, key=seen.__getitem__))


def make_pseudo_queries(passages: Sequence[Passage], strategy: str = "sentence", *, limit: int | None = None, seed: int = 0,
                        exclude: Iterable[str] = (), max_words: int = 12, min_words: int = 4, min_passage_words: int = 12,
                        min_terms: int = 3, max_terms: int = 6) -> tuple[list[PseudoQuery], SkipCounts]:
    """At most one pseudo-query per passage (at most `limit` in all, passages drawn in a seeded order).

    `exclude`: doc ids never used (held-out candidates). Query ids are ``pq-<doc id>``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"pseudo-query strategy must be one of {', '.join(STRATEGIES)}, but got {strategy!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, but got {limit}")
    if not (1 <= min_terms <= max_terms) or max_words < min_words or min_words < 1:
        raise ValueError(f"expects 1 <= min_terms <= max_terms and 1 <= min_words <= max_words, but got terms "
                         f"{min_terms}..{max_terms}, words {min_words}..{max_words}")
    rng = random.Random(seed)
    excluded = set(exclude)
    idf: dict[str, float] = {}
    if strategy == "terms":
        df, n = document_frequencies(passages)
        idf = {w: math.log((n + 1) / (c + 0.5)) for w, c in df.items()}
    counts = SkipCounts()
    seen_texts: set[str] = set()
    order = list(range(len(passages)))
    rng.shuffle(order)
    out: list[PseudoQuery] = []
    for i in order:
        if limit is not None and len(out) >= limit:
            break
        p = passages[i]
        counts.passages += 1
        text = " ".join(p.text.split())
        if p.doc_id in excluded:
            counts.skipped["held out"] += 1
            continue
        if not text:
            counts.skipped["empty"] += 1
            continue
        if len(text.split()) < min_passage_words:
            counts.skipped[f"shorter than {min_passage_words} words"] += 1
            continue
        if text in seen_texts:
            counts.skipped["duplicate text"] += 1
            continue
        seen_texts.add(text)
        if strategy == "sentence":
            made = sentence_query(text, rng, max_words, min_words)
            if made is None:
                counts.skipped["one sentence"] += 1
                continue
            query, positive = made
        else:
            query = terms_query(text, rng, idf, min_terms, max_terms)
            if query is None:
                counts.skipped["too few salient words"] += 1
                continue
            positive = text
        out.append(PseudoQuery(f"pq-{p.doc_id}", query, p.doc_id, positive))
        counts.made += 1
    return out, counts
