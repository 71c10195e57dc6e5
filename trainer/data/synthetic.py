"""Built-in generated data sets: small, deterministic, and hard enough to be worth tuning.

Both sets are templated English reviews, built so that

* a bag-of-words model does well but not perfectly: negations ("not good") and contrasts
  ("X but Y", where the second clause decides) flip what the polarity words say;
* no model reaches 100%: about 8% of labels are flipped at random and a few items are
  genuinely ambiguous ("it was okay") with a random label. Seed-to-seed variance of a
  fine-tuned model is therefore real, which is what the sweeps are meant to measure;
* every word is an ordinary English word in BERT's uncased WordPiece vocabulary.

``synthetic-pairs`` asks whether two sentences about the same thing agree in polarity. Each
sentence's polarity is drawn independently of the label's, so either sentence alone says
nothing about the label: a model has to read both.

``synthetic-similarity`` (regression, like STS-B) scores two review sentences from 0 to 5
by how much they share a subject and an opinion, plus noise, so a model has to read both
and none is exact. ``synthetic-ner`` (token classification, like CoNLL-2003) tags templated
sentences naming people, places and organisations in BIO (``B-PER``, ``I-LOC``, ``O``);
names recur in new contexts and some companies are named after places, so tags need
context.

Each (set, split) has its own fixed seed and uses ``random.Random``, whose stream is
stable across machines and Python versions, so every call returns the same frame.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pandas as pd

from trainer.data_config import SETS, TASK_OF_SET
from trainer.errors import DataError
from trainer.messages import parameter_message

SPLITS = ("train", "dev", "test")
SIZES = {"train": 2000, "dev": 500, "test": 500}
NOISE = 0.08  # probability that a label is flipped

_SET_SEEDS = {"synthetic-sentiment": 1, "synthetic-pairs": 2, "synthetic-similarity": 3,
              "synthetic-ner": 4}  # fmt: skip
_SPLIT_SEEDS = {"train": 0, "dev": 1, "test": 2}

# -- the words the templates draw from ---------------------------------------------
POSITIVE = (
    "great", "good", "excellent", "wonderful", "brilliant", "enjoyable", "charming",
    "delightful", "fantastic", "beautiful", "clever", "pleasant", "impressive", "lovely",
    "superb", "amazing", "fun", "solid", "perfect", "gripping",
)  # fmt: skip
NEGATIVE = (
    "bad", "terrible", "awful", "boring", "dull", "poor", "weak", "disappointing",
    "horrible", "bland", "painful", "annoying", "ugly", "stupid", "lame", "awkward",
    "messy", "pointless", "clumsy", "dreadful",
)  # fmt: skip
POSITIVE_VERBS = ("loved", "enjoyed", "liked", "adored", "appreciated")
NEGATIVE_VERBS = ("hated", "disliked", "despised", "resented")
NEGATORS = ("not", "never", "far from")

SUBJECTS = (
    "the movie", "the film", "the book", "the show", "the album", "the hotel",
    "the restaurant", "the meal", "the service", "the food", "the acting", "the story",
    "the plot", "the ending", "the music", "the game", "this phone", "the camera",
    "the concert", "the staff", "the room", "this place", "the course", "the trip",
    "the soundtrack", "the script", "the cast", "the novel", "the series", "the visit",
)  # fmt: skip
INTENSIFIERS = (
    "very", "really", "truly", "extremely", "quite", "so", "incredibly", "absolutely",
    "genuinely", "pretty",
)  # fmt: skip
HEDGES = (
    "I think", "I guess", "in my opinion,", "to be honest,", "honestly,", "overall,",
    "frankly,", "all in all,", "for me,",
)  # fmt: skip
NEUTRAL = (
    "{s} was okay I guess.",
    "{s} was fine, nothing more.",
    "{s} was neither good nor bad.",
    "I have mixed feelings about {s}.",
    "{s} was not what I expected.",
    "{s} was about average.",
    "{s} was {p} in parts and {n} in others.",
    "some people will like {s} and some will not.",
)
OPINION_HOLDERS = (
    "my friend", "my sister", "my brother", "a colleague", "my neighbor", "the critics",
)  # fmt: skip

# Share of items of each kind (the rest are plain statements).
_NEGATED, _CONTRAST, _AMBIGUOUS, _HEDGED = 0.08, 0.08, 0.04, 0.25


def _adjective(rng: random.Random, positive: bool) -> str:
    word = rng.choice(POSITIVE if positive else NEGATIVE)
    if rng.random() < 0.3:
        word = f"{rng.choice(INTENSIFIERS)} {word}"
    return word


def _plain(rng: random.Random, subject: str, positive: bool) -> str:
    """A statement whose polarity words say what it means."""
    adj, adj2 = _adjective(rng, positive), _adjective(rng, positive)
    verb = rng.choice(POSITIVE_VERBS if positive else NEGATIVE_VERBS)
    article = "an" if adj[0] in "aeiou" else "a"
    templates = (
        f"I thought {subject} was {adj}.",
        f"{subject} turned out to be {adj}.",
        f"I found {subject} to be {adj}.",
        f"{subject} felt {adj} to me.",
        f"{subject} really was {adj}.",
        f"{subject} was {adj} and {adj2}.",
        f"I really {verb} {subject}.",
        f"I {verb} {subject} from the start.",
        f"{subject} was {article} {adj} experience.",
        f"{subject} was {'worth every minute' if positive else 'a waste of time'}.",
        f"I would {'happily' if positive else 'never'} recommend {subject}.",
    )
    return rng.choice(templates)


def _negated(rng: random.Random, subject: str, positive: bool) -> str:
    """A statement that negates words of the opposite polarity: "not bad" is positive."""
    word = rng.choice(NEGATIVE if positive else POSITIVE)
    negator = rng.choice(NEGATORS)
    if negator == "not" and rng.random() < 0.3:
        word = f"{rng.choice(('very', 'really', 'that'))} {word}"
    base_verb = rng.choice(("hate", "dislike") if positive else ("like", "enjoy", "love"))
    templates = (
        f"{subject} was {negator} {word}.",
        f"{subject} is {negator} {word}.",
        f"I did not {base_verb} {subject}.",
    )
    return rng.choice(templates)


def _clause(rng: random.Random, positive: bool) -> str:
    subject = rng.choice(SUBJECTS)
    return f"{subject} was {_adjective(rng, positive)}"


def _contrast(rng: random.Random, positive: bool) -> str:
    """Two clauses of opposite polarity; the main (second) clause decides the label."""
    first, second = _clause(rng, not positive), _clause(rng, positive)
    if rng.random() < 0.5:
        return f"{first} but {second}."
    return f"although {first}, {second}."


def _neutral(rng: random.Random, subject: str) -> str:
    template = rng.choice(NEUTRAL)
    return template.format(s=subject, p=rng.choice(POSITIVE), n=rng.choice(NEGATIVE))


def _finish(rng: random.Random, sentence: str, hedge: bool = True) -> str:
    if hedge and rng.random() < _HEDGED:
        sentence = f"{rng.choice(HEDGES)} {sentence}"
    return sentence[0].upper() + sentence[1:]


def _opinion(rng: random.Random, subject: str, positive: bool) -> str:
    """One review sentence (plain or negated) of a given polarity about ``subject``."""
    if rng.random() < _NEGATED:
        return _negated(rng, subject, positive)
    return _plain(rng, subject, positive)


def _sentence(rng: random.Random, positive: bool) -> tuple[tuple[str, ...], int]:
    """One synthetic-sentiment item, meant to have label ``positive``."""
    subject = rng.choice(SUBJECTS)
    kind = rng.random()
    if kind < _AMBIGUOUS:
        return (_finish(rng, _neutral(rng, subject)),), rng.randrange(2)
    if kind < _AMBIGUOUS + _CONTRAST:
        return (_finish(rng, _contrast(rng, positive)),), int(positive)
    return (_finish(rng, _opinion(rng, subject, positive)),), int(positive)


def _second_opinion(rng: random.Random, subject: str, positive: bool) -> str:
    """The second sentence of a pair: often someone else's view of the same thing."""
    opinion = _opinion(rng, subject, positive)
    if rng.random() < 0.4 and not opinion.startswith("I "):  # "she said I loved it" is a muddle
        opinion = f"{rng.choice(OPINION_HOLDERS)} said {opinion}"
    return opinion


def _pair(rng: random.Random, agree: bool) -> tuple[tuple[str, ...], int]:
    """One synthetic-pairs item: two views of one subject, meant to (dis)agree."""
    subject = rng.choice(SUBJECTS)
    first_positive = rng.random() < 0.5
    first = _finish(rng, _opinion(rng, subject, first_positive))
    if rng.random() < _AMBIGUOUS:
        return (first, _finish(rng, _neutral(rng, subject), hedge=False)), rng.randrange(2)
    second = _second_opinion(rng, subject, first_positive == agree)
    return (first, _finish(rng, second, hedge=False)), int(agree)


def _draw(
    make: Callable[[random.Random, bool], tuple[tuple[str, ...], int]],
    rng: random.Random,
    n: int,
    seen: set[tuple[str, ...]],
) -> tuple[list[tuple[str, ...]], list[int]]:
    """``n`` items with balanced intended labels, none already in ``seen``, then noise.

    Rejecting repeats keeps every split free of duplicates and of rows of earlier splits,
    so dev and test accuracy measure generalisation, not memory.
    """
    intended = [i % 2 for i in range(n)]
    rng.shuffle(intended)
    texts, labels = [], []
    for positive in intended:
        item, label = make(rng, bool(positive))
        while item in seen:
            item, label = make(rng, bool(positive))
        seen.add(item)
        texts.append(item)
        labels.append(1 - label if rng.random() < NOISE else label)
    return texts, labels


# -- the sets of the other tasks ---------------------------------------------------

_SCORE_NOISE = 0.4  # std of the noise on a similarity score (of 0–5)


def _similarity_item(rng: random.Random) -> tuple[tuple[str, str], float]:
    """Two sentences and their similarity: 2.5 for the same subject, 2.0 for the same
    opinion, 0.5 when both are about a subject at all, noise of std 0.4; in [0, 5] by
    steps of 0.2, as STS-B's annotators' means are."""
    first_subject = rng.choice(SUBJECTS)
    same_subject = rng.random() < 0.5
    second_subject = first_subject if same_subject else rng.choice(SUBJECTS)
    first_positive = rng.random() < 0.5
    same_opinion = rng.random() < 0.5
    second_positive = first_positive == same_opinion
    first = _finish(rng, _opinion(rng, first_subject, first_positive))
    second = _finish(rng, _opinion(rng, second_subject, second_positive), hedge=False)
    score = 0.5 + 2.5 * (second_subject == first_subject) + 2.0 * same_opinion
    score += rng.gauss(0, _SCORE_NOISE)
    return (first, second), round(min(5.0, max(0.0, score)) * 5) / 5


FIRST_NAMES = ("Alice", "Omar", "Mei", "John", "Sara", "Ivan", "Lena", "Kofi", "Ana", "Raj",
               "Nora", "Tom", "Yuki", "Pedro", "Hana", "Emil")  # fmt: skip
LAST_NAMES = ("Smith", "Khan", "Chen", "Novak", "Garcia", "Berg", "Okafor", "Rossi", "Singh",
              "Mueller", "Tanaka", "Silva")  # fmt: skip
PLACES = ("Paris", "Lagos", "Berlin", "Lima", "Osaka", "Toronto", "Cairo", "Oslo", "Madrid",
          "Delhi", "Boston", "Vienna", "Sydney", "Nairobi")  # fmt: skip
COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Vandelay", "Hooli", "Stark", "Wayne")
COMPANY_KINDS = ("Corp", "Group", "Bank", "Airlines", "Motors", "Labs")
# sentence templates: P a person, L a place, O an organisation, the rest plain words
TEMPLATES = (
    "P visited L last week .", "P works for O in L .", "O opened an office in L .",
    "P and P met in L .", "the board of O named P chief executive .",
    "P said the L plant of O will close .", "shares of O fell after P left .",
    "P moved from L to L in the spring .", "O signed a deal with O on Monday .",
    "the mayor of L thanked P .", "P wrote about O for a paper in L .",
    "fans in L cheered as P won .",
)  # fmt: skip


def _entity(rng: random.Random, kind: str) -> tuple[list[str], str]:
    """The words of one entity of a template slot and its type."""
    if kind == "P":
        words = [rng.choice(FIRST_NAMES)] + ([rng.choice(LAST_NAMES)] if rng.random() < 0.7 else [])
        return words, "PER"
    if kind == "L":
        return [rng.choice(PLACES)], "LOC"
    # a company, now and then named after a place: only the context says ORG
    name = rng.choice(PLACES) if rng.random() < 0.15 else rng.choice(COMPANIES)
    return [name] + ([rng.choice(COMPANY_KINDS)] if rng.random() < 0.6 else []), "ORG"


def _entity_item(rng: random.Random) -> tuple[list[str], list[str]]:
    """One tagged sentence: its words and their BIO tags (``O`` outside entities); one
    word in twelve is an opinion word or a lower-cased name, noise around the entities."""
    words, tags = [], []
    for slot in rng.choice(TEMPLATES).split():
        if slot in ("P", "L", "O"):
            entity, kind = _entity(rng, slot)
            words += entity
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(entity) - 1)
        else:
            words.append(slot)
            tags.append("O")
        if rng.random() < 1 / 12:
            words.append(rng.choice(POSITIVE + NEGATIVE))
            tags.append("O")
    words[0] = words[0][0].upper() + words[0][1:]
    return words, tags


def _draw_task(name: str, rng: random.Random, n: int, seen: set) -> tuple[list, list]:
    """``n`` new items of a task set (texts, labels), none already in ``seen``: pairs and
    scores for ``synthetic-similarity``, word lists and tag lists for ``synthetic-ner``."""
    texts, labels = [], []
    while len(texts) < n:
        if name == "synthetic-similarity":
            item, label = _similarity_item(rng)
        else:
            words, label = _entity_item(rng)
            item = tuple(words)
        if item in seen:
            continue
        seen.add(item)
        texts.append(item)
        labels.append(label)
    return texts, labels


def generate(name: str, split: str) -> pd.DataFrame:
    """Return one split of a built-in data set, the same rows on every call and machine.

    Parameters
    ----------
    name : {"synthetic-sentiment", "synthetic-pairs", "synthetic-similarity", "synthetic-ner"}
        The set: single sentences (columns ``text``, ``label``), sentence pairs (``text``,
        ``text_pair``, ``label``; label 1 when the two sentences agree, or a similarity
        score from 0 to 5), or sentences as word lists with a list of tags (``text``,
        ``label``).
    split : {"train", "dev", "test"}
        2,000, 500 and 500 rows.

    Returns
    -------
    pandas.DataFrame
        Labels are int64 0/1, roughly balanced.
    """
    if name not in SETS:
        raise DataError(parameter_message("name", f"must be one of {SETS}", name, of="generate"))
    if split not in SPLITS:
        raise DataError(
            parameter_message("split", f"must be one of {SPLITS}", split, of="generate")
        )
    seen: set[tuple[str, ...]] = set()
    for current in SPLITS[: SPLITS.index(split) + 1]:
        rng = random.Random(1000 * _SET_SEEDS[name] + _SPLIT_SEEDS[current])
        if name in TASK_OF_SET:
            texts, labels = _draw_task(name, rng, SIZES[current], seen)
        else:
            make = _sentence if name == "synthetic-sentiment" else _pair
            texts, labels = _draw(make, rng, SIZES[current], seen)
    if name == "synthetic-ner":  # a list of words and a list of tags per row
        return pd.DataFrame({"text": [list(t) for t in texts], "label": labels})
    columns = ("text",) if name == "synthetic-sentiment" else ("text", "text_pair")
    frame = pd.DataFrame(texts, columns=list(columns))
    dtype = "float64" if name == "synthetic-similarity" else "int64"
    frame["label"] = pd.array(labels, dtype=dtype)
    return frame
