"""How much an ERP field name says a concept: split into words (snake_case, CamelCase, digits), then compared
with the concept's words, whole or abbreviated the way ERP columns are (`eml` for email, `cncl` for cancel,
`whse` for warehouse: the first letter kept and letters dropped, never added or reordered).

A name is only a hint: the suggester and the check weigh it with what the values look like, so a tenant whose
columns are called `X1`, `X2` is still read by its values where the values can tell.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])"
                    r"|(?<=[A-Z])(?=[A-Z][a-z])")


@lru_cache(maxsize=8192)
def words_of(name: str) -> tuple[str, ...]:
    """'EmailOptInDate' -> ('email', 'opt', 'in', 'date'); 'bill_zip' -> ('bill', 'zip')."""
    return tuple(part.lower() for part in _SPLIT.split(name) if part)


def _abbreviates(short: str, word: str) -> bool:
    """`short` is `word` with letters dropped (same first letter, in order, at least 3 letters and half the
    word): two letters say too little ('dt' would be dispatch as much as date, 'prc' province as much as
    price), so such words must be listed themselves."""
    if len(short) < 3 or len(short) >= len(word) or short[0] != word[0] or len(short) < 0.5 * len(word):
        return False
    if any(char.isdigit() for char in word):  # 'line' is no abbreviation of 'line1'
        return False
    rest = iter(word[1:])
    return all(char in rest for char in short[1:])


@lru_cache(maxsize=65536)
def word_score(name: str, words: tuple[str, ...]) -> float:
    """How well `name` says one of `words` (0..1): the whole name, one of its words, one abbreviated, or glued
    to another word (never merely inside one: 'stat' is in 'state', which says no status)."""
    parts = words_of(name)
    compact = "".join(parts)
    best = 0.0
    for word in words:
        if compact == word:
            return 1.0
        if word in parts:
            best = max(best, 0.9)
        elif any(_glued(part, word, exact=True) for part in parts):
            best = max(best, 0.7)
        elif any(_abbreviates(part, word) for part in parts if not part.isdigit()):
            best = max(best, 0.6)
        elif any(_glued(part, word, exact=False) for part in parts):
            best = max(best, 0.5)
    return best


GLUE_SUFFIXES = frozenset({"dt", "cd", "no", "id", "fl", "yn", "nm", "ts", "tp"})


def _glued(part: str, word: str, *, exact: bool) -> bool:
    """`word` (`exact`) or its abbreviation at the start or end of a word glued from two, the IBM i way (CUSNO =
    cus + no, EMLOPT = eml + opt, CRTDT = crt + dt, DLTFLG = dlt + flg, EMAILADDR = email + addr); the other
    piece has two letters at least. Abbreviations only in short glued names; two-letter words only as the
    suffixes IBM i columns end with (DT, CD, NO...): 'first' is no 'fir' + 'st'."""
    if len(part) < 4 or part == word:
        return False
    if len(word) < 3:
        return exact and len(part) <= 8 and word in GLUE_SUFFIXES and part.endswith(word)
    if not exact and len(part) > 8:  # 'dep' in 'department' abbreviates 'depot' by chance
        return False
    pieces = [part[:cut] for cut in range(2, len(part) - 1)] + [part[cut:] for cut in range(2, len(part) - 1)]
    return any(piece == word if exact else _abbreviates(piece, word) for piece in pieces)


def name_score(name: str, groups: Sequence[tuple[str, ...]]) -> float:
    """How well `name` says a concept made of word groups that must all be said (e.g. (email words, opt-in
    words)): the mean of the groups' scores, 0 when one group is not said at all."""
    if not groups:
        return 0.0
    scores = [word_score(name, group) for group in groups]
    if min(scores) == 0.0:
        return 0.0
    return sum(scores) / len(scores)


def common_prefix_groups(names: Sequence[str], members: Sequence[tuple[str, ...]], *, least: int = 3,
                         core: frozenset[int] = frozenset(), core_least: int = 0) -> dict[str, list[str]]:
    """Prefixes shared by names whose remainders say at least `least` different `members` (e.g. 'bill_' over
    bill_city, bill_state, bill_zip): prefix -> the names under it that say a member (not 'ship_dt' under
    'ship_'), `core_least` of them among the `core` members (an address block says a city or a zip, not only a
    name and an e-mail, which a file prefix such as 'cm_' over a customer's own columns says too). Used to find
    flat address blocks."""
    found: dict[str, list[str]] = {}
    for name in names:
        glued = name.isalnum() and (name.isupper() or name.islower())  # BILLCITY: IBM i names have no separator
        for cut in range(1, len(name)):
            prefix, rest = name[:cut], name[cut:]
            boundary = prefix[-1] in "_-" or (prefix[-1].islower() and rest[0].isupper())
            if not rest or not (boundary or (glued and len(prefix) >= 2 and len(rest) >= 3)):
                continue
            found.setdefault(prefix, []).append(name)
    groups: dict[str, list[str]] = {}
    for prefix, under in found.items():
        said = {name: {i for i, member in enumerate(members) if word_score(name[len(prefix):], member) >= 0.6}
                for name in under}
        members_said = set().union(*said.values())
        if len(members_said) >= least and len(members_said & core) >= core_least:
            groups[prefix] = [name for name in under if said[name]]
    # 'BI' and 'BILL' over BILLCITY, BILLZIP...: the longer prefix is the block's
    return {p: names for p, names in groups.items()
            if not any(q != p and q.startswith(p) and set(groups[q]) >= set(names) for q in groups)}
