"""Scoring one field against one concept, and the words that say why: shared by `suggest` (which field holds
a key) and `check` (which unmapped field looks like a mapped concept)."""

from __future__ import annotations

from dataclasses import dataclass

from sync.onboarding.concepts import Concept
from sync.onboarding.names import name_score, word_score
from sync.onboarding.shapes import FieldProfile

# kinds values alone can tell (nothing else looks like an e-mail address); the others need a word of the name
TELLING_KINDS = frozenset({"email", "phone", "upc", "currency"})
KIND_WORDS = {
    "email": "e-mail addresses", "phone": "phone numbers", "flag": "yes/no flags", "flag_digit": "1/0 flags",
    "date": "dates", "datetime": "date-times", "money": "money amounts", "decimal": "numbers",
    "integer": "whole numbers", "upc": "UPC/EAN codes", "code": "codes", "currency": "currency codes",
    "alpha": "text", "text": "text",
}


@dataclass(frozen=True)
class Fit:
    score: float
    why: str
    kind: str = ""


def value_fit(profile: FieldProfile, concept: Concept) -> tuple[float, str, str]:
    """The share of the field's filled values of the concept's kinds (flags: the whole field reads yes/no), why,
    and the kind that fits best."""
    if not concept.kinds:
        return 0.5, "", ""
    if not profile.filled:
        return 0.0, "no values in the sample", ""
    if {"flag", "flag_digit"} & set(concept.kinds):
        values = profile.flag_values()
        if values is None:
            return 0.0, "", ""
        letters = profile.is_bool or not {v.lower() for v in values} <= {"1", "0"}
        return (1.0 if letters else 0.7), f"yes/no values {sorted(values)}", "flag"
    kind, share = max(((k, profile.looks(k)) for k in concept.kinds), key=lambda pair: pair[1])
    if kind == "code" and concept.key.endswith("status") and profile.distinct > 12:
        return 0.0, "", ""
    examples = ", ".join(repr(e) for e in profile.examples(2))
    return share, f"{share:.0%} of {profile.filled} values are {KIND_WORDS.get(kind, kind)} (e.g. {examples})", kind


def concept_fit(profile: FieldProfile, concept: Concept, *, least: float = 0.6) -> Fit | None:
    """How well a field holds a concept, or None when it does not: its values must be of the concept's kinds
    (at least `least` of them) and, unless the kinds alone tell (an e-mail address), its name must say it."""
    share, value_why, kind = value_fit(profile, concept)
    said = name_score(profile.name, concept.words)
    bonus = word_score(profile.name, concept.bonus) * 0.25 if concept.bonus else 0.0
    telling = kind in TELLING_KINDS
    if not profile.filled:
        if said < 0.85 or not concept.kinds:
            return None
        return Fit(0.4 + said * 0.5 + bonus, f"'{profile.name}': the name says {concept.describe()} (no values in "
                   "the sample to confirm it)", "")
    if concept.kinds and share < (least / 2 if telling else least):  # a few bad e-mails are still e-mails
        return None
    if kind in TELLING_KINDS and share < least and said == 0.0:
        return None
    if not telling and said == 0.0:
        return None
    if concept.avoid and word_score(profile.name, concept.avoid) >= 0.9:
        return None
    score = share + said * 1.2 + bonus + profile.fill * (0.5 if telling else 0.2)
    parts = [value_why] if value_why else []
    if said:
        parts.append(f"the name says {concept.describe()}")
    return Fit(score, f"'{profile.name}': " + "; ".join(parts), kind)
