"""Lineage: training data checked against evaluation data before a mixture is written (and again at evaluation
time). A shared question (in any language row of a training item) is refused; n-gram near-duplicates are
reported.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from langmix.errors import UserInputError
from langmix.lineage_questions import Questions, contained, first_turn_lengths, question_turns
from langmix.ngram_index import GramTable, near_duplicate_counts
from langmix.records import Example

log = logging.getLogger(__name__)


class MixtureError(UserInputError):
    """A design or budget that cannot be satisfied."""


class LineageError(MixtureError):
    """Training data would contain an evaluation item or a translation of it."""


# Contamination (issue 8.2). Identity is content: what the user wrote. An example's question is its user turns,
# less tool results (`api_data.is_tool_result`: API-Bank writes a tool's output as a user turn `API result: {...}`)
# and less few-shot exemplars (`Example.exemplar_messages`): a whole dialogue, not its last turn, since dialogues
# share boilerplate turns ('My username is JohnDoe and my password is pass123.'). An evaluation question that is
# consecutive user turns of a training example (any of them: a copied question followed by 'Are you sure?' and a
# second answer), exactly or after `normalise_question` turn by turn, in any language, is refused. A training item
# is all of its language rows in the training data, not only the rows a mixture samples: an es-only mixture whose
# items' English rows are evaluation questions is refused (the caller passes the other rows as `related`). Source
# ids made by loaders are positional (`gsm8k-<file stem>-<row>`, `<prefix>-<row>`) and coincide across unrelated
# files, so a shared source id is a clash only where the two items have no language in common whose questions could
# be compared (a translation of an evaluation item given without its original); where they share one, the
# questions decide. A training question that shares at least NEAR_DUPLICATE_SHARE of its n-grams with one
# evaluation question of the same language is a near-duplicate (a light paraphrase or an edited copy; each language
# row of an item is compared, and an example is reported with its item's best match; a question of several turns
# is their normalised text joined): reported in the LineageReport and logged, not refused, since templated word
# problems share phrasing legitimately. n-grams are word 8-grams; languages written without spaces between words
# (CHAR_NGRAM_LANGUAGES) use character 8-grams of the text with spaces removed: 8 Chinese/Japanese characters are
# about 4-6 words, a span long enough that chance matches between unrelated questions stay rare, and short enough
# that a 30-character question still has 20+ grams. A question shorter than n units is one gram. Eval n-grams are
# indexed in a dict (gram -> eval questions), so the check is linear in the train n-grams.
NGRAM_WORDS = 8
NGRAM_CHARS = 8
CHAR_NGRAM_LANGUAGES = frozenset({"zh", "ja", "th"})
NEAR_DUPLICATE_SHARE = 0.5


class NearDuplicate(NamedTuple):
    """A training question that shares `share` of its n-grams with an evaluation question in `language`."""

    train_id: str
    eval_id: str
    language: str
    share: float


@dataclass
class LineageReport:
    """What `check_lineage` found short of refusing: near-duplicates of evaluation questions."""

    n_train: int
    n_eval: int
    near_duplicates: list[NearDuplicate] = field(default_factory=list)


def _gram_unit(language: str) -> tuple[bool, int]:
    """(characters rather than words, n) for a language's n-grams."""
    chars = language.split("-")[0] in CHAR_NGRAM_LANGUAGES
    return chars, NGRAM_CHARS if chars else NGRAM_WORDS


@dataclass
class _EvalIndex:
    """The evaluation side of the lineage check, built once per evaluation set (every mixture of a study is checked
    against the same one): source ids, raw and normalised questions (tuples of turns; `*_lengths`: a first turn ->
    the lengths of the questions starting with it, longest first), and per language its grams
    (`ngram_index.GramTable`; columns: the language's eval questions in eval-set order)."""

    evaluation: list[Example]
    by_source: dict[str, dict[str, Example]]
    exact: dict[tuple[str, ...], Example]
    normal: dict[tuple[str, ...], Example]
    exact_lengths: dict[str, tuple[int, ...]]
    normal_lengths: dict[str, tuple[int, ...]]
    tables: dict[str, GramTable]  # language -> its eval questions' grams
    columns: dict[str, list[int]]  # language -> eval-set position of each column (ascending)
    vocab: dict[str, int]  # word -> id, the words of the eval questions

    @classmethod
    def build(cls, evaluation: list[Example]) -> "_EvalIndex":
        by_source: dict[str, dict[str, Example]] = defaultdict(dict)
        exact: dict[tuple[str, ...], Example] = {}
        normal: dict[tuple[str, ...], Example] = {}
        columns: dict[str, list[int]] = defaultdict(list)
        questions: dict[str, list[str]] = defaultdict(list)
        turns = question_turns(evaluation, evaluation=True)
        for j, (ex, raw, normalised, text) in enumerate(zip(evaluation, *turns)):
            by_source[ex.source_id].setdefault(ex.language, ex)
            if raw:
                exact.setdefault(raw, ex)
            if normalised:
                normal.setdefault(normalised, ex)
            columns[ex.language].append(j)
            questions[ex.language].append(text)
        vocab: dict[str, int] = {}
        tables = {lang: GramTable.build(qs, *_gram_unit(lang), vocab) for lang, qs in questions.items()}
        tables = {lang: t for lang, t in tables.items() if len(t.hashes)}
        return cls(list(evaluation), dict(by_source), exact, normal, first_turn_lengths(exact),
                   first_turn_lengths(normal), tables, dict(columns), vocab)


_EVAL_INDEXES: dict[str, _EvalIndex] = {}


# What a recorded lineage check depends on besides the data: the rules. A manifest records them with the eval set's
# digest; an eval-time recheck against the same eval set, rules and training data is not run again.
LINEAGE_RULES = (f"clash: exact or normalised question (user turns less tool results and exemplars; a math eval "
                 f"item's last user turn) as consecutive "
                 f"user turns of any row of the item, source id where no language is shared; near: any row of the "
                 f"item, its turns joined, word {NGRAM_WORDS}-grams, char {NGRAM_CHARS}-grams for "
                 f"{','.join(sorted(CHAR_NGRAM_LANGUAGES))}, share {NEAR_DUPLICATE_SHARE}")


def eval_digest(evaluation: list[Example]) -> str:
    """Content digest of an evaluation set as the lineage check sees it: ids, source ids, languages, messages."""
    h = hashlib.sha256()
    for ex in evaluation:
        h.update(b"\2".join(x.encode() for x in (ex.id, ex.source_id, ex.language)))
        for m in ex.messages:
            h.update(b"\0" + m["role"].encode() + b"\1" + m["content"].encode())
    return h.hexdigest()


def lineage_record(evaluation: list[Example]) -> dict[str, str]:
    """What a manifest records of the lineage check its mixture passed: the eval set's digest and the rules."""
    return {"eval_digest": eval_digest(evaluation), "rules": LINEAGE_RULES}


def _eval_index(evaluation: list[Example]) -> _EvalIndex:
    """The index of `evaluation`, cached by content (`eval_digest`), so a changed eval set is re-indexed."""
    key = eval_digest(evaluation)
    if key not in _EVAL_INDEXES:
        if len(_EVAL_INDEXES) >= 8:
            _EVAL_INDEXES.pop(next(iter(_EVAL_INDEXES)))
        _EVAL_INDEXES[key] = _EvalIndex.build(evaluation)
    return _EVAL_INDEXES[key]


_BLOCK = 5_000  # training questions per array pass


def _near_duplicates(train: list[Example], questions: list[str], index: _EvalIndex) -> list[tuple[int, NearDuplicate]]:
    """`questions`: the train examples' normalised questions (`Questions.text`), computed once by the caller. Per
    language, `ngram_index.near_duplicate_counts`: the eval question sharing most grams with each train question,
    the first in eval-set order on ties, where the shared grams reach the share. (position in `train`, pair)."""
    by_lang: dict[str, list[int]] = defaultdict(list)
    for k, ex in enumerate(train):
        if ex.language in index.tables:
            by_lang[ex.language].append(k)
    found: list[tuple[int, NearDuplicate]] = []
    for lang, all_ks in by_lang.items():
        columns = index.columns[lang]
        for start in range(0, len(all_ks), _BLOCK):  # bounded memory (~100-300 bytes per gram) for any input
            ks = all_ks[start:start + _BLOCK]
            hits = near_duplicate_counts(index.tables[lang], [questions[k] for k in ks], *_gram_unit(lang),
                                         dict(index.vocab), NEAR_DUPLICATE_SHARE)
            found += [(ks[q], NearDuplicate(train[ks[q]].id, index.evaluation[columns[col]].id, lang,
                                            round(shared / n_grams, 3))) for q, col, shared, n_grams in hits]
    found.sort(key=lambda kd: kd[0])
    return found


def _content_hit(raw: tuple[str, ...], normal: tuple[str, ...], index: _EvalIndex) -> tuple[Example, str] | None:
    """The evaluation example whose question is consecutive user turns of a training example, exactly or after
    normalising (any language), and why."""
    found = index.exact.get(raw)  # the whole (most examples are one turn)
    if found is None and len(raw) > 1:
        found = contained(raw, index.exact, index.exact_lengths)
    if found is not None:
        return found, "same question"
    found = index.normal.get(normal)
    if found is None and len(normal) > 1:
        found = contained(normal, index.normal, index.normal_lengths)
    if found is not None:
        return found, "same question after normalising"
    return None


def _clashes(rows: list[Example], groups: list[list[int]], turns: Questions,
             index: _EvalIndex) -> list[tuple[str, str, str, str]]:
    """(train id, eval id, why, eval source id) of each train example (`groups[k][0]`) that clashes: one of its
    item's rows (`groups[k]`: its own first) is an evaluation question; else it shares a source id with an
    evaluation item in none of whose languages its item has a row."""
    hits: dict[int, tuple[Example, str] | None] = {}
    pairs: list[tuple[str, str, str, str]] = []
    for group in groups:
        ex = rows[group[0]]
        found = None
        for j in group:
            if j not in hits:
                hits[j] = _content_hit(turns.raw[j], turns.normal[j], index)
            if hits[j] is not None:
                hit, why = hits[j]  # type: ignore[misc]
                found = (hit, why if j == group[0] else f"{why}, in its {rows[j].language} row")
                break
        if found is None and ex.source_id in index.by_source:
            same = index.by_source[ex.source_id]
            if not {rows[j].language for j in group} & set(same):  # nothing to compare: the id is the evidence
                found = (same.get(ex.language) or next(iter(same.values())), "same source id")
        if found is not None:
            pairs.append((ex.id, found[0].id, found[1], found[0].source_id))
    return pairs


def _with_related(train: list[Example], related: list[list[Example]] | None) -> tuple[list[Example], list[list[int]]]:
    """Every row to check (`train`, then the other rows of their items not among them) and, per train example,
    the positions of its item's rows (its own first)."""
    rows = list(train)
    groups = [[k] for k in range(len(train))]
    if related is None:
        return rows, groups
    position = {(ex.source_id, ex.language): k for k, ex in reversed(list(enumerate(train)))}
    for k, others in enumerate(related):
        for other in others:
            key = (other.source_id, other.language)
            if key not in position:
                position[key] = len(rows)
                rows.append(other)
            if position[key] != k:
                groups[k].append(position[key])
    return rows, groups


def _best_per_example(groups: list[list[int]], near: list[tuple[int, NearDuplicate]],
                      train: list[Example]) -> list[NearDuplicate]:
    """Per train example, its item's best near-duplicate (highest share; its own row first on ties), in order."""
    if all(len(group) == 1 for group in groups):  # no related rows: each row speaks for itself
        return [d for _, d in near]
    by_row = dict(near)
    out = []
    for k, group in enumerate(groups):
        found = [by_row[j] for j in group if j in by_row]
        if found:
            best = max(found, key=lambda d: d.share)  # the first of the highest: its own row where tied
            out.append(best if best.train_id == train[k].id else best._replace(train_id=train[k].id))
    return out


def lineage(train: list[Example], evaluation: list[Example], related: list[list[Example]] | None = None
            ) -> tuple[list[tuple[str, str, str, str]], list[NearDuplicate]]:
    """(clashes, near-duplicates) of training data against evaluation data. `related[k]`: the other language rows
    of `train[k]`'s item in the training data, checked as its own (the pairs name `train[k]`; a near-duplicate
    found through another row carries that row's language). A clash holds an evaluation question (its user turns
    as consecutive user turns, exactly or after `normalise_question`, any language), or shares a source id with an
    evaluation item that has none of the item's languages: (train id, eval id, why, eval source id);
    near-duplicates (n-gram overlap in the same language, see NEAR_DUPLICATE_SHARE) are looked for only where
    nothing clashes."""
    rows, groups = _with_related(train, related)
    turns = question_turns(rows, evaluation=False)
    index = _eval_index(evaluation)
    clashes = _clashes(rows, groups, turns, index)
    if clashes:
        return clashes, []
    return clashes, _best_per_example(groups, _near_duplicates(rows, turns.text, index), train)


def refuse_clashes(pairs: list[tuple[str, str, str, str]]) -> None:
    if pairs:
        shown = "; ".join(f"{t} / {e} ({why})" for t, e, why, _ in pairs[:10]) + (" ..." if len(pairs) > 10 else "")
        raise LineageError(f"{len({p[3] for p in pairs})} evaluation items (or translations of them) would be "
                           f"trained on ({len(pairs)} training examples; train id / eval id): {shown}")


def warn_near(near: list, where: str = "", listed_in: str = "") -> None:
    """One warning: how many near-duplicates, the first five pairs; `where` names the training data (a mixture and
    its task), `listed_in` the file that holds every pair."""
    if near:
        shown = "; ".join(f"{d[0]} / {d[1]} ({d[3]:.0%})" for d in near[:5])
        log.warning("%s%d training questions are near-duplicates of evaluation questions (>= %.0f%% of their "
                    "n-grams shared; train id / eval id): %s%s%s", f"{where}: " if where else "", len(near),
                    100 * NEAR_DUPLICATE_SHARE, shown, " ..." if len(near) > 5 else "",
                    f" (all {len(near)} in {listed_in})" if listed_in else "")


def refused_or_reported(train: list[Example], evaluation: list[Example],
                        related: list[list[Example]] | None = None) -> LineageReport:
    """`lineage`, refusing any clash (LineageError); the near-duplicates in a report."""
    clashes, near = lineage(train, evaluation, related)
    refuse_clashes(clashes)
    return LineageReport(len(train), len(evaluation), near)


def check_lineage(train: list[Example], evaluation: list[Example],
                  related: list[list[Example]] | None = None) -> LineageReport:
    """Refuse training data that clashes with evaluation data (`lineage`; `related`: the other rows of each
    example's item), naming the pairs (train id / eval id); report near-duplicates (n-gram overlap in the same
    language, see NEAR_DUPLICATE_SHARE) without refusing them.

    Measured (2 shared CPU cores): 10k train x 2.5k eval questions of ~40 words with 300 near-duplicates
    in about 1.5 s (tests/test_lineage.py::test_near_duplicate_check_scales)."""
    report = refused_or_reported(train, evaluation, related)
    warn_near(report.near_duplicates)
    return report
