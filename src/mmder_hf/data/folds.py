"""Subject-independent folds for RAVDESS, CREMA-D and IEMOCAP, and their export to JSON / CSV.

The protocol is stated once, in ``CORPUS_INFO[corpus].protocol`` (:mod:`mmder_hf.data.corpora`, shown by the
model and dataset cards); this module implements it, and no actor ever appears in two splits of a fold.
What that sentence leaves out, and why:

* **RAVDESS**: blocks of 4 consecutive actors sorted by id; the two validation actors (first two of the next
  block, cyclically) are one odd = male and one even = female actor, so validation is gender balanced; train
  = the other 18. Blocks are the standard ones (actors 1-4, 5-8, ...) whatever is present: a missing actor
  shrinks its own fold and shifts no other (a block with no actor present has no fold; validation then comes
  from the next block that has actors). A small synthetic corpus of ``n`` actors has ``ceil(n / 4)`` folds.
* **CREMA-D**: the actor ranges are :data:`~mmder_hf.data.corpora.CREMA_D_FOLD_RANGES`; validation = the
  first four ids of the next range, cyclically (CREMA-D ids do not encode gender, so balance is not enforced;
  fixed ids keep the split reproducible without the demographics file).
* **IEMOCAP**: session ``k`` is the test set; validation = the whole next session, cyclically (both of its
  actors: the dialog videos show both actors of a session, so splitting a session between splits would leak
  faces); train = the remaining three sessions.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Optional, Sequence

from .corpora import CREMA_D_ACTORS, CREMA_D_FOLD_RANGES, IEMOCAP_SESSIONS, RAVDESS_ACTORS, normalize_corpus_name


logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Fold:
    """One subject-independent fold: the actor ids (IEMOCAP: actor 1..10, 2 per session) of each split."""

    corpus: str
    fold: int
    train: tuple[int, ...]
    validation: tuple[int, ...]
    test: tuple[int, ...]
    rule: str = ""

    def split_of(self, actor: int) -> Optional[str]:
        """Name of the split holding ``actor``, or ``None`` if the actor is in no split."""
        for split in SPLITS:
            if actor in getattr(self, split):
                return split
        return None

    def actors(self, split: str) -> tuple[int, ...]:
        """Actor ids of ``split`` (``"val"`` is accepted for ``"validation"``)."""
        return getattr(self, "validation" if split == "val" else split)


def _check_disjoint(fold: Fold) -> Fold:
    sets = [set(fold.train), set(fold.validation), set(fold.test)]
    if any(a & b for i, a in enumerate(sets) for b in sets[i + 1 :]):
        raise AssertionError(f"Fold {fold} has an actor in two splits")
    return fold


def _check_not_empty(fold: Fold) -> Fold:
    """A fold with actors in every split (else a clear error, before any data is read)."""
    sets = [set(fold.train), set(fold.validation), set(fold.test)]
    empty = [name for name, actors in zip(("train", "validation", "test"), sets) if not actors]
    if empty:
        raise ValueError(
            f"{fold.corpus} fold {fold.fold} leaves no actor for {' and '.join(empty)} "
            f"(test {list(fold.test)}, validation {list(fold.validation)}, train {list(fold.train)}): "
            "the corpus has too few actors for this protocol"
        )
    return fold


def _cyclic_folds(
    corpus: str, blocks: list[list[int]], actors: list[int], num_validation: int, rule: str
) -> list[Fold]:
    """Fold k tests block k, validates on the first ``num_validation`` actors of block k+1 (cyclic), trains on rest."""
    folds = []
    for k, block in enumerate(blocks):
        if not block:  # none of this fold's actors present: no fold (the others keep their numbers)
            continue
        following = [blocks[(k + i) % len(blocks)] for i in range(1, len(blocks))]
        validation = next((b for b in following if b), [])[:num_validation]
        train = [a for a in actors if a not in block and a not in validation]
        folds.append(_check_disjoint(Fold(corpus, k + 1, tuple(train), tuple(validation), tuple(block), rule)))
    return folds


def ravdess_folds(actors: Optional[Iterable[int]] = None) -> list[Fold]:
    """RAVDESS folds over ``actors`` (default: the 24 RAVDESS actors): see the module docstring.

    Raises:
        ValueError: with fewer than 5 actors (two blocks are needed for test + validation + train).
    """
    actors = sorted(set(RAVDESS_ACTORS if actors is None else actors))
    if len(actors) < 5:
        raise ValueError(f"RAVDESS folds need at least 5 actors, got {actors}")
    # The standard blocks 1-4, 5-8, ... (beyond 24 for a larger synthetic corpus), restricted to the actors present.
    last = max(24, actors[-1])
    blocks = [[a for a in range(first, first + 4) if a in actors] for first in range(1, last + 1, 4)]
    while blocks and not blocks[-1]:  # a small corpus simply has fewer folds
        blocks.pop()
    rule = "test: block k of 4 consecutive actors; validation: first 2 actors of block k+1 (cyclic)"
    return _cyclic_folds("ravdess", blocks, actors, 2, rule)


def crema_d_folds(actors: Optional[Iterable[int]] = None) -> list[Fold]:
    """CREMA-D's 5 folds by actor range, restricted to ``actors`` when given (see the module docstring)."""
    present = set(CREMA_D_ACTORS if actors is None else actors)
    ranges = [[a for a in range(lo, hi + 1) if a in present] for lo, hi in CREMA_D_FOLD_RANGES]
    rule = "test: actor range k; validation: first 4 actor ids of range k+1 (cyclic)"
    return _cyclic_folds("crema_d", ranges, sorted(present), 4, rule)


def iemocap_folds(sessions: Sequence[int] = IEMOCAP_SESSIONS) -> list[Fold]:
    """Leave-one-session-out folds; actor ids are ``2 * session - 1`` (male) and ``2 * session`` (female)."""
    sessions = sorted(sessions)

    def actors_of(s):
        return (2 * s - 1, 2 * s)

    folds = []
    for k, session in enumerate(sessions):
        val_session = sessions[(k + 1) % len(sessions)]
        train = [a for s in sessions if s not in (session, val_session) for a in actors_of(s)]
        folds.append(
            _check_disjoint(
                Fold(
                    "iemocap",
                    k + 1,
                    tuple(train),
                    actors_of(val_session),
                    actors_of(session),
                    "test: session k; validation: session k+1 (cyclic); train: other 3 sessions",
                )
            )
        )
    return folds


def get_folds(corpus: str, actors: Optional[Iterable[int]] = None) -> list[Fold]:
    """All folds of ``corpus``; for RAVDESS and CREMA-D ``actors`` restricts them to the actors present."""
    corpus = normalize_corpus_name(corpus)
    if corpus == "ravdess":
        return ravdess_folds(actors)
    if corpus == "crema_d":
        return crema_d_folds(actors)
    return iemocap_folds()


def get_fold(corpus: str, fold: int, actors: Optional[Iterable[int]] = None) -> Fold:
    """Fold number ``fold`` (1-based) of ``corpus``, over ``actors`` when given (the standard fold, shrunk)."""
    folds = {f.fold: f for f in get_folds(corpus, actors)}
    if int(fold) not in folds:
        standard = [f.fold for f in get_folds(corpus)]
        if corpus != "iemocap" and int(fold) in standard and actors is not None:
            missing = list(get_folds(corpus)[standard.index(int(fold))].test)
            raise ValueError(f"{corpus} fold {fold} has none of its test actors {missing} in the source")
        raise ValueError(f"{corpus} has folds {sorted(folds)}, got fold={fold}")
    return _check_not_empty(folds[int(fold)])


def available_folds(corpus: str, source: Any = None) -> list[int]:
    """The fold numbers of ``corpus`` read from ``source``: a synthetic corpus has one per block of 4 generated
    actors (6 for the built-in one, ``source=None``), a real corpus its standard folds.

    Read from the source's name and the synthetic corpus's settings file only, so that a fold the corpus lacks is
    refused before any data is built.
    """
    from .synthetic import METADATA_FILE, is_synthetic_source

    if normalize_corpus_name(corpus) == "ravdess" and is_synthetic_source(source):
        actors = len(RAVDESS_ACTORS)  # the built-in corpus
        if source is not None:
            with open(os.path.join(os.fspath(source), METADATA_FILE)) as f:
                actors = json.load(f)["config"]["num_actors"]
        return list(range(1, math.ceil(actors / 4) + 1))
    return [fold.fold for fold in get_folds(corpus)]


def missing_actors(corpus: str, fold: int, actors: Iterable[int]) -> dict[str, list[int]]:
    """``split -> actor ids`` of the standard fold that ``actors`` lacks (empty when the fold is complete)."""
    standard, present = get_fold(corpus, fold), set(actors)
    return {
        split: [a for a in getattr(standard, split) if a not in present]
        for split in ("train", "validation", "test")
        if any(a not in present for a in getattr(standard, split))
    }


def export_folds(output_dir: str, corpora: Sequence[str] = ("ravdess", "crema_d", "iemocap")) -> list[str]:
    """Write ``<corpus>_folds.json`` and ``<corpus>_folds.csv`` (one row per actor and fold) for each corpus.

    Returns:
        The written paths. The committed copies live in ``mmder_hf/data/folds/``.
    """
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for corpus in corpora:
        folds = get_folds(corpus)
        path = os.path.join(output_dir, f"{corpus}_folds.json")
        with open(path, "w") as f:
            json.dump({"corpus": corpus, "rule": folds[0].rule, "folds": [asdict(x) for x in folds]}, f, indent=1)
        written.append(path)
        path = os.path.join(output_dir, f"{corpus}_folds.csv")
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["corpus", "fold", "actor", "split"] + (["session"] if corpus == "iemocap" else []))
            for fold in folds:
                for split in SPLITS:
                    for actor in fold.actors(split):
                        extra = [math.ceil(actor / 2)] if corpus == "iemocap" else []
                        writer.writerow([corpus, fold.fold, actor, split] + extra)
        written.append(path)
    return written


def fold_table_markdown(corpus: str) -> str:
    """A markdown table of the folds of ``corpus`` (used in dataset cards and the README)."""
    lines = ["| fold | test actors | validation actors | train actors |", "|---|---|---|---|"]
    for fold in get_folds(corpus):
        lines.append(f"| {fold.fold} | {_ranges(fold.test)} | {_ranges(fold.validation)} | {_ranges(fold.train)} |")
    return "\n".join(lines)


def _ranges(ids: Sequence[int]) -> str:
    """Compact ``1-4, 7, 9-12`` rendering of sorted ids."""
    ids = sorted(ids)
    out, start = [], None
    for i, a in enumerate(ids):
        if start is None:
            start = a
        if i + 1 == len(ids) or ids[i + 1] != a + 1:
            out.append(str(start) if start == a else f"{start}-{a}")
            start = None
    return ", ".join(out)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m mmder_hf.data.folds --output_dir DIR``: export every fold definition."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--output_dir", default=os.path.join(os.path.dirname(__file__), "folds"))
    args = parser.parse_args(argv)
    for path in export_folds(args.output_dir):
        logger.info("wrote %s", path)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()


__all__ = [
    "CREMA_D_FOLD_RANGES",
    "Fold",
    "crema_d_folds",
    "available_folds",
    "export_folds",
    "fold_table_markdown",
    "get_fold",
    "get_folds",
    "iemocap_folds",
    "missing_actors",
    "ravdess_folds",
]
