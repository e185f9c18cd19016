"""`bcsync mapping suggest`: a starting mapping from a sample of a live tenant, every guess with its evidence.

Input: one `Sample` per resource path the tenant answers (its records, where the records were in the body, what
an empty page answers). Output: a `Suggestion` - which path holds which resource, and a value and a reason for
every key it writes - rendered as TOML the mapping loader accepts (`Suggestion.toml`).

How it reads a tenant, values first and names second (names are tenant-specific; values are not):
- **resources by what they hold**: customers are the records with e-mail addresses and yes/no flags; documents
  (orders, picks, invoices, memos) have line rows and point at customer codes; the order is the document every
  other document points at, the invoice the one the memo (and the pick) point at; styles have a SKU matrix,
  inventory rows many quantities, locations a few flagged records whose codes the inventory names;
- **identifiers by who points at whom**: a record's own number is a unique field other resources' values fall
  inside (`_owned_number`), and a reference is a field whose values fall inside another resource's number;
- **keys and stamps**: the key is the unique, always-filled, integer-like field (bcapi's `pkey` first); the
  last-modified stamp the date-time that is never before any other date of its record;
- **every other key** by `sync.onboarding.concepts` (the kinds of values, then the words of the name): an
  e-mail column, a phone column, Y/N consent flags told apart by their names, dates and their formats, money;
- **habits**: date formats (`shapes.formats_for`), padded codes (`normalise = ["trim"]`), yes values, flat
  address blocks (a prefix over city/state/zip-like columns), the envelope and a 404 for an empty page.
What it cannot know (which status code means what) it leaves at the default with the codes it saw.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, Literal

from config.mapping import FALLBACKS, REQUIRED_FIELDS, AddressFields, Fields, FieldTable
from config.mapping import Mapping as TenantMapping
from sync.onboarding import concepts as C
from sync.onboarding.evidence import Fit, concept_fit
from sync.onboarding.names import common_prefix_groups, word_score
from sync.onboarding.shapes import (
    DATE_FAMILIES,
    YES_WORDS,
    FieldProfile,
    TableProfile,
    date_formats_reading,
    pattern_of,
    profile_records,
)

EmptyAnswer = Literal["404", "empty", ""]
DOCUMENTS = ("order", "pick", "invoice", "creditmemo")


@dataclass(frozen=True)
class Sample:
    """What one resource path of the tenant gave: its records (children included), where they were in the
    body (`envelope`: "" = bcapi's own shapes), and what a page with no records answers."""

    path: str
    records: tuple[Mapping[str, Any], ...]
    envelope: str = ""
    empty_answer: EmptyAnswer = ""
    error: str | None = None


@dataclass(frozen=True)
class Guess:
    value: Any
    why: str


@dataclass
class Suggestion:
    """roles: resource -> the path that holds it (with why); entries: TOML table -> key -> guess."""

    roles: dict[str, Guess] = field(default_factory=dict)
    entries: dict[str, dict[str, Guess]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def put(self, table: str, key: str, value: Any, why: str) -> None:
        self.entries.setdefault(table, {})[key] = Guess(value, why)

    def get(self, dotted: str) -> Any:
        table, _, key = dotted.rpartition(".")
        return self.entries[table][key].value

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for table, keys in self.entries.items():
            node = doc
            for part in table.split("."):
                node = node.setdefault(part, {})
            for key, guess in keys.items():
                node[key] = guess.value
        return doc

    def toml(self) -> str:
        return render_toml(self)


ADDRESS_MEMBERS = [c.words[0] for c in C.ADDRESS_CONCEPTS]
GEOGRAPHIC = frozenset(i for i, c in enumerate(C.ADDRESS_CONCEPTS)
                       if c.key in ("addresses.addr1", "addresses.city", "addresses.state", "addresses.zipcode",
                                    "addresses.country"))


def address_blocks(names: Sequence[str]) -> dict[str, list[str]]:
    """Flat address blocks: prefix -> its columns (at least three address parts, two of them geographic)."""
    return common_prefix_groups(names, ADDRESS_MEMBERS, least=3, core=GEOGRAPHIC, core_least=2)


def find_records(body: Any) -> tuple[list[Mapping[str, Any]], str] | None:
    """The records of a response body and where they were: bcapi's ``{"data": {"header": [...]}}`` and
    ``{"data": [...]}`` (envelope ""), else the first list of objects found (envelope: its dotted path, e.g.
    "value" or "result.items"); None when the body holds no list of records."""
    if isinstance(body, dict) and "data" in body:
        data = body["data"]
        if isinstance(data, dict):
            data = data.get("header", [])
        if data is None:
            return [], ""
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            return data, ""
    queue: list[tuple[Any, str]] = [(body, "")]
    while queue:
        node, where = queue.pop(0)
        if isinstance(node, list) and where and all(isinstance(r, dict) for r in node):
            return node, where
        if isinstance(node, dict):
            queue += [(value, f"{where}.{key}" if where else key) for key, value in node.items()
                      if isinstance(value, dict | list)]
    return None


_LISTED = re.compile(r"(?:known|available|valid|resources)[^:]{0,40}:\s*([\w./-]+(?:\s*,\s*[\w./-]+)+)", re.I)


def listed_paths(message: str) -> list[str]:
    """Resource paths an error message lists ("Resource 'x' not found (known: customer, order, ...)"): some
    gateways say which resources they serve when asked for one they do not."""
    match = _LISTED.search(message)
    return [part.strip() for part in match.group(1).split(",")] if match else []


def _json_ints(profile: FieldProfile) -> bool:
    return profile.numeric == 1.0 and profile.looks("integer") == 1.0


# --- the tenant as sampled ------------------------------------------------------------------------


class _Tenant:
    def __init__(self, samples: Sequence[Sample], region: str) -> None:
        self.samples = {s.path: s for s in samples if s.error is None}
        self.region = region
        self.tables = {path: profile_records(list(s.records), region) for path, s in self.samples.items()}
        self.keys: dict[str, Guess] = {}
        self.stamps: dict[str, Guess] = {}
        for path, table in self.tables.items():
            self.keys[path] = self._key(table)
            self.stamps[path] = self._stamp(path, table)

    # -- per resource -----------------------------------------------------------------------------
    @staticmethod
    def _key(table: TableProfile) -> Guess:
        best: tuple[float, FieldProfile] | None = None
        for profile in table.fields.values():
            if profile.fill < 1.0 or not profile.unique or len(max(profile.texts, key=len)) > 24:
                continue
            score = (word_score(profile.name, C.KEY_WORDS) + (0.6 if _json_ints(profile) else 0.0)
                     + (0.3 if profile.looks("integer") == 1.0 else 0.0) + max(0.0, 0.4 - 0.15 * profile.position))
            if best is None or score > best[0]:
                best = (score, profile)
        if best is None:
            return Guess("", "no field is filled and unique in every sampled record")
        p = best[1]
        kind = "an integer" if _json_ints(p) else "a value"
        return Guess(p.name, f"'{p.name}' is filled and unique in all {p.total} sampled records, {kind} "
                     f"(e.g. {', '.join(p.examples(2))})")

    def _stamp(self, path: str, table: TableProfile) -> Guess:
        records = self.samples[path].records
        dated = {name: p for name, p in table.fields.items()
                 if p.fill >= 0.9 and p.date_formats() is not None}
        best: tuple[float, str, str] | None = None
        for name, p in dated.items():
            timed = p.has_time()
            latest = _latest_share(records, name, [n for n in dated if n != name])
            score = word_score(name, C.STAMP_WORDS) + latest + (0.5 if timed else 0.0) + p.fill * 0.2
            if best is None or score > best[0]:
                why = (f"'{name}': {'date-times' if timed else 'dates'} in {p.fill:.0%} of records, never before "
                       f"the record's other dates in {latest:.0%} of them (e.g. {p.examples(1)[0]})")
                best = (score, name, why)
        if best is None:
            return Guess("", "no field holds a date in (nearly) every record")
        return Guess(best[1], best[2])

    # -- identifiers across resources ------------------------------------------------------------
    def values(self, path: str, name: str) -> set[str]:
        profile = self.tables[path].fields.get(name)
        return set(profile.texts) if profile else set()

    def number_candidates(self, path: str) -> list[FieldProfile]:
        key = self.keys[path].value
        stamp = self.stamps[path].value
        return [p for p in self.tables[path].fields.values()
                if p.name not in (key, stamp) and p.fill >= 0.95 and p.unique
                and max(p.looks("code"), p.looks("integer")) >= 0.95 and p.looks("date") == 0
                and p.looks("money") < 0.5 and p.looks("email") == 0 and p.looks("phone") < 0.5
                and max(len(t) for t in p.texts) <= 16]

    def references(self, path: str, values: set[str], skip: Sequence[str] = ()) -> tuple[FieldProfile, float] | None:
        """The field of `path` whose filled values fall inside `values` the most (share of its distinct values)."""
        best: tuple[FieldProfile, float] | None = None
        for p in self.tables[path].fields.values():
            if p.name in skip or not p.filled or p.name == self.keys[path].value:
                continue
            own = set(p.texts)
            share = len(own & values) / len(own)
            if share > 0 and (best is None or share > best[1]):
                best = (p, share)
        return best

    @staticmethod
    def references_rows(rows: TableProfile, values: set[str]) -> tuple[FieldProfile, float] | None:
        """The field of child rows whose values fall inside `values` the most (at least half of them)."""
        best: tuple[FieldProfile, float] | None = None
        for p in rows.fields.values():
            if not p.filled:
                continue
            own = set(p.texts)
            share = len(own & values) / len(own)
            if share >= 0.5 and (best is None or share > best[1]):
                best = (p, share)
        return best


def _latest_share(records: Sequence[Mapping[str, Any]], name: str, others: Sequence[str]) -> float:
    """Share of records whose `name` date is not before any of their other dates."""
    if not others:
        return 0.5
    checked = latest = 0
    for record in records:
        mine = _moment(record.get(name))
        if mine is None:
            continue
        moments = [m for other in others if (m := _moment(record.get(other))) is not None]
        checked += 1
        latest += all(mine >= m for m in moments)
    return latest / checked if checked else 0.0


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    formats = date_formats_reading(text)
    if formats is None:
        return None
    try:
        moment = datetime.fromisoformat(text) if formats == () else datetime.strptime(text, formats[0])
    except ValueError:
        return None
    return moment.replace(tzinfo=None)


# --- which path is which resource -----------------------------------------------------------------


def _flags(table: TableProfile) -> list[FieldProfile]:
    return [p for p in table.fields.values() if p.flag_values() is not None and p.distinct >= 1
            and not {t.lower() for t in p.texts} <= {"1", "0"}]


def line_collection(table: TableProfile) -> str | None:
    """The child collection of line rows: quantities, prices or UPCs and codes - not an address block."""
    best: tuple[float, str] | None = None
    for name, rows in table.children.items():
        fields = rows.fields.values()
        quantity = any(p.looks("integer") >= 0.9 and p.looks("upc") < 0.5 for p in fields)
        money = any(p.looks("money") >= 0.9 for p in fields)
        upc = any(p.looks("upc") >= 0.8 for p in fields)
        codes = any(p.looks("code") >= 0.9 and p.looks("integer") < 0.9 for p in fields)
        address = bool(address_blocks(["x_" + n for n in rows.fields]))
        score = quantity + money + 0.5 * upc + 0.5 * codes - 2.0 * address
        if quantity and codes and score > 1.0 and (best is None or score > best[0]):
            best = (score, name)
    return best[1] if best else None


def _email_fill(table: TableProfile) -> tuple[float, str]:
    best = (0.0, "")
    for p in table.fields.values():
        if p.looks("email") >= 0.3 and p.fill > best[0]:
            best = (p.fill, p.name)
    return best


def assign_roles(tenant: _Tenant) -> dict[str, Guess]:
    roles: dict[str, Guess] = {}
    left = set(tenant.tables)

    def path_words(path: str, role: str) -> float:
        return word_score(path, C.ROLE_WORDS[role])

    # customers: e-mail addresses and yes/no flags on the record itself
    scored = []
    for path in left:
        table = tenant.tables[path]
        fill, name = _email_fill(table)
        if fill < 0.3:
            continue
        flags = len(_flags(table))
        scored.append((fill + 0.4 * min(flags, 3) + 0.5 * path_words(path, "customer"), path, name, fill, flags))
    if scored:
        _, path, name, fill, flags = max(scored)
        roles["customer"] = Guess(path, f"'{path}': e-mail addresses in '{name}' ({fill:.0%} of records) and "
                                  f"{flags} yes/no flag fields")
        left.discard(path)

    # documents: line rows, and a field of customer codes or of another document's number (a style's SKU rows
    # are no document: it points at nothing and nothing of a document's own fields points at it)
    customer_codes = _customer_codes(tenant, roles)
    lined = {path: lines for path in sorted(left) if (lines := line_collection(tenant.tables[path])) is not None}
    numbers = document_numbers(tenant, list(lined))
    documents: dict[str, str] = {}
    for path, lines in lined.items():
        ref = tenant.references(path, customer_codes) if customer_codes else None
        linked = any(other != path and _points_at(tenant, path, number, numbers.get(path))
                     or other != path and path in numbers and _points_at(tenant, other, numbers[path], number)
                     for other, number in numbers.items())
        if (ref is not None and ref[1] >= 0.5) or linked:
            documents[path] = lines
    numbers = document_numbers(tenant, list(documents))
    _assign_documents(tenant, documents, numbers, roles, path_words)
    left -= set(documents)

    # styles (a SKU matrix), inventory (quantities, flat), locations (a few flagged records, flat)
    scores: list[tuple[float, str, str, str]] = []
    for path in left:
        table = tenant.tables[path]
        flat = not table.children
        upcs = any(p.looks("upc") >= 0.8 for rows in table.children.values() for p in rows.fields.values())
        quantities = sum(1 for p in table.fields.values() if p.looks("integer") >= 0.95 and p.name not in (
            tenant.keys[path].value,))
        flagged = bool(_flags(table)) or any(p.flag_values() is not None for p in table.fields.values())
        style = (not flat) + upcs + 0.5 * path_words(path, "style")
        inventory = flat + (quantities >= 3) + 0.5 * path_words(path, "inventory") + 0.1 * min(quantities, 6)
        location = flat + 0.5 * flagged + 0.5 * (table.records <= 50) + 0.5 * path_words(path, "location") - 0.2 * (
            quantities >= 3)
        scores += [(style, path, "style", f"'{path}': a child collection of SKU rows"
                    + (" with UPCs" if upcs else "")),
                   (inventory, path, "inventory", f"'{path}': flat records with {quantities} quantity fields"),
                   (location, path, "location", f"'{path}': {table.records} flat records"
                    + (" with a yes/no flag" if flagged else ""))]
    for score, path, role, why in sorted(scores, reverse=True):
        if role in roles or path not in left or score < 1.0:
            continue
        roles[role] = Guess(path, why)
        left.discard(path)
    return roles


def _points_at(tenant: _Tenant, path: str, number: FieldProfile, own: FieldProfile | None) -> bool:
    """Does a field of `path` (not its own number) hold values of `number` (another resource's)?"""
    ref = tenant.references(path, set(number.texts), skip=[own.name] if own else [])
    return ref is not None and ref[1] >= 0.8


def _customer_codes(tenant: _Tenant, roles: dict[str, Guess]) -> set[str]:
    if "customer" not in roles:
        return set()
    code = _customer_code(tenant, roles["customer"].value)
    return tenant.values(roles["customer"].value, code.value) if code.value else set()


def _customer_code(tenant: _Tenant, path: str) -> Guess:
    """The customer's code: a unique field the other resources' values fall inside (orders name it)."""
    best: tuple[float, FieldProfile, str] | None = None
    for candidate in tenant.number_candidates(path):
        if candidate.looks("alpha") < 0.5 and candidate.looks("integer") < 1.0:
            continue
        values = set(candidate.texts)
        referenced = 0.0
        where = ""
        for other in tenant.tables:
            if other == path:
                continue
            ref = tenant.references(other, values)
            if ref and ref[1] > referenced:
                referenced, where = ref[1], f"'{other}'.'{ref[0].name}'"
        score = referenced + 0.3 * word_score(candidate.name, C.CUSTOMER + C.CODE) - 0.1 * candidate.position
        if best is None or score > best[0]:
            best = (score, candidate, where if referenced else "")
    if best is None:
        return Guess("", "no unique code field")
    _, p, where = best
    why = f"'{p.name}' is unique in every sampled customer (e.g. {', '.join(p.examples(2))})"
    if where:
        why += f"; {where} holds these codes"
    return Guess(p.name, why)


def _number_ranking(tenant: _Tenant, path: str, documents: Sequence[str]) -> list[tuple[float, FieldProfile]]:
    """A document's candidates for its own number, best first: unique in it, early in the record, and the values
    other documents point at with it as the superset (a reference to another document is a subset of that
    document's number instead)."""
    ranked: list[tuple[float, FieldProfile]] = []
    for candidate in tenant.number_candidates(path):
        values = set(candidate.texts)
        score = 0.6 * max(0.0, 1.0 - 0.25 * (candidate.position - 1))
        score += 0.3 * word_score(candidate.name, C.CODE)
        for other in documents:
            if other == path:
                continue
            ref = tenant.references(other, values)
            if ref is None or ref[1] < 0.8:
                continue
            theirs = len(set(ref[0].texts))
            if theirs < len(values):
                score += 1.0  # they point at it: it is ours
            elif theirs > len(values) and ref[0].unique:
                score -= 1.0  # ours is the subset: a reference to their number
        ranked.append((score, candidate))
    return sorted(ranked, key=lambda pair: -pair[0])


def document_numbers(tenant: _Tenant, documents: Sequence[str]) -> dict[str, FieldProfile]:
    """Each document's own number. Two documents whose best candidates hold the same numbers (a pick carrying
    its invoice's number, every pick invoiced) cannot both own them: the one holding it earlier in its record
    (its identifier, where bcapi puts it) keeps it and the other takes its next candidate."""
    ranking = {path: _number_ranking(tenant, path, documents) for path in documents}
    choice = {path: 0 for path in documents}
    for _ in range(len(documents) * 4):
        clash = False
        chosen = {p: ranking[p][i][1] for p, i in choice.items() if i < len(ranking[p])}
        for a, b in itertools.combinations(chosen, 2):
            va, vb = set(chosen[a].texts), set(chosen[b].texts)
            if len(va & vb) < 0.8 * min(len(va), len(vb)):
                continue
            loser = b if chosen[a].position <= chosen[b].position else a
            choice[loser] += 1
            clash = True
            break
        if not clash:
            return chosen
    return {p: ranking[p][i][1] for p, i in choice.items() if i < len(ranking[p])}


def _assign_documents(tenant: _Tenant, documents: Mapping[str, str], numbers: Mapping[str, FieldProfile],
                      roles: dict[str, Guess], path_words: Any) -> None:
    if not documents:
        return
    # who points at whose number
    points: dict[str, set[str]] = {path: set() for path in documents}
    for path in documents:
        for other, number in numbers.items():
            if other == path:
                continue
            ref = tenant.references(path, set(number.texts), skip=[numbers[path].name] if path in numbers else [])
            if ref and ref[1] >= 0.8:
                points[path].add(other)
    pointed = Counter(target for targets in points.values() for target in targets)
    order = max(documents, key=lambda p: (pointed[p], path_words(p, "order"), -len(points[p])))
    roles["order"] = Guess(order, f"'{order}': line rows ('{documents[order]}'), and the documents of "
                           f"{pointed[order]} other resource(s) point at its number"
                           + (f" '{numbers[order].name}'" if order in numbers else ""))
    rest = [p for p in documents if p != order]
    cast = _cast_documents(tenant, rest, points, pointed, path_words)
    for role, path in cast.items():
        targets = ", ".join(f"'{t}'" for t in sorted(points[path])) or "no other document"
        roles[role] = Guess(path, f"'{path}': line rows ('{documents[path]}'); points at {targets}; pointed at by "
                            f"{pointed[path]}")


def _cast_documents(tenant: _Tenant, rest: Sequence[str], points: Mapping[str, set[str]], pointed: Counter[str],
                    path_words: Any) -> dict[str, str]:
    """Pick, invoice and memo among the documents that are not the order: the memo points at the invoice and
    nothing points at it, the invoice points at the pick; names and contents break ties."""
    best: tuple[float, dict[str, str]] | None = None
    for perm in itertools.permutations(rest, min(len(rest), 3)):
        cast = dict(zip(("pick", "invoice", "creditmemo"), perm, strict=False))
        score = sum(0.5 * path_words(path, role) + _document_content(tenant.tables[path], role)
                    for role, path in cast.items())
        memo, invoice, pick = cast.get("creditmemo"), cast.get("invoice"), cast.get("pick")
        if memo and invoice and invoice in points[memo]:
            score += 1.0
        if memo and pointed[memo] == 0:
            score += 0.5
        if invoice and pick and pick in points[invoice]:
            score += 1.0
        if best is None or score > best[0]:
            best = (score, cast)
    return best[1] if best else {}


def _document_content(table: TableProfile, role: str) -> float:
    """What a pick, an invoice or a memo holds that the others do not, as a small tie-break."""
    names = list(table.fields)
    has = {concept: any(concept_fit(table.fields[n], c) for n in names)
           for concept, c in (("tracking", C.PICK_CONCEPTS[3]), ("reason", C.MEMO_CONCEPTS[1]),
                              ("restock", C.MEMO_CONCEPTS[3]), ("ship_date", C.PICK_CONCEPTS[1]))}
    if role == "creditmemo":
        return 0.3 * has["reason"] + 0.3 * has["restock"]
    if role == "pick":
        return 0.2 * has["ship_date"] + 0.1 * has["tracking"]
    return 0.0


# --- the fields of each resource ------------------------------------------------------------------


def _assign(table: TableProfile, concepts: Sequence[C.Concept], taken: set[str]) -> dict[str, tuple[str, Fit]]:
    """Concept key -> the field that holds it best and why, each field used once (best pairs first)."""
    pairs: list[tuple[float, str, str, Fit]] = []
    for concept in concepts:
        for name, profile in table.fields.items():
            if name in taken:
                continue
            fit = concept_fit(profile, concept)
            if fit is not None:
                pairs.append((fit.score, concept.key, name, fit))
    chosen: dict[str, tuple[str, Fit]] = {}
    used: set[str] = set()
    for _, key, name, fit in sorted(pairs, key=lambda pair: -pair[0]):
        if key in chosen or name in used:
            continue
        chosen[key] = (name, fit)
        used.add(name)
    return chosen


def _by_default_name(table: TableProfile, concepts: Sequence[C.Concept], taken: set[str], defaults: FieldTable,
                     prefix: str) -> dict[str, tuple[str, Fit]]:
    """Concepts whose default name (bcapi's convention) is a field here whose values do not contradict it."""
    found: dict[str, tuple[str, Fit]] = {}
    for concept in concepts:
        name = getattr(defaults, concept.key.removeprefix(prefix), None)
        if not isinstance(name, str) or not name or name in taken or name not in table.fields:
            continue
        profile = table.fields[name]
        fit = concept_fit(profile, concept)
        if fit is None and profile.filled:
            continue
        found[concept.key] = (name, Fit(9.0, (fit.why if fit else f"'{name}'") + " (the default name)"))
    return found


class _Builder:
    def __init__(self, tenant: _Tenant, roles: dict[str, Guess], base: TenantMapping) -> None:
        self.tenant = tenant
        self.roles = roles
        self.base = base
        self.out = Suggestion(roles=dict(roles))
        self.formats: set[str] = set()
        self.padded: dict[str, set[str]] = {}
        self.yes: set[str] = set()

    def path(self, role: str) -> str | None:
        guess = self.roles.get(role)
        return guess.value if guess else None

    def table(self, role: str) -> TableProfile | None:
        path = self.path(role)
        return self.tenant.tables[path] if path else None

    def begin(self, role: str) -> tuple[str, TableProfile, set[str]] | None:
        """The resource's path, its profile and the fields already taken (its key and stamp); None: not found."""
        path = self.path(role)
        if path is None:
            return None
        return path, self.tenant.tables[path], {self.tenant.keys[path].value, self.tenant.stamps[path].value}

    def put_field(self, role: str, table_key: str, key: str, name: str, why: str,
                  profile: FieldProfile | None = None) -> None:
        self.out.put(table_key, key, name, why)
        if profile is not None and profile.padded > 0 and name and key in _field_keys(table_key):
            self.padded.setdefault(table_key, set()).add(key)
        if profile is not None and profile.date_formats():
            self.formats.update(profile.date_formats() or ())

    # -- resources ------------------------------------------------------------------------------
    def resources(self) -> None:
        for role in C.ROLES:
            table = f"resources.{role}"
            default = getattr(self.base.resources, role)
            path = self.path(role)
            if path is None:
                self.out.put(table, "path", default.path, f"NOT FOUND: no sampled resource looks like a {role} "
                             "resource; the default is kept - name the tenant's path")
                continue
            sample = self.tenant.samples[path]
            self.out.put(table, "path", path, self.roles[role].why)
            key, stamp = self.tenant.keys[path], self.tenant.stamps[path]
            self.out.put(table, "key", key.value or default.key,
                         key.why if key.value else f"NOT FOUND: {key.why}; the default is kept")
            self.out.put(table, "last_mod", stamp.value or default.last_mod,
                         stamp.why if stamp.value else f"NOT FOUND: {stamp.why}; the default is kept")
            if stamp.value:
                p = self.tenant.tables[path].fields[stamp.value]
                self.formats.update(p.date_formats() or ())
            if sample.empty_answer == "404":
                self.out.put(table, "not_found", "empty", "a page past the last one was answered with a 404: "
                             "the tenant says 'no records' that way")
            if sample.envelope and sample.envelope not in ("data", "data.header"):
                self.out.put(table, "envelope", sample.envelope, f"the records were at '{sample.envelope}' of the "
                             "response body")

    # -- one table of concepts ------------------------------------------------------------------
    def concepts(self, role: str, table_key: str, table: TableProfile, concepts: Sequence[C.Concept],
                 taken: set[str], defaults: FieldTable, prefix: str = "") -> dict[str, str]:
        found = _by_default_name(table, concepts, taken, defaults, prefix)
        found |= _assign(table, [c for c in concepts if c.key not in found], taken | {n for n, _ in found.values()})
        names: dict[str, str] = {}
        for concept in concepts:
            key = concept.key.removeprefix(prefix)
            if concept.key in found:
                name, fit = found[concept.key]
                names[key] = name
                taken.add(name)
                self.put_field(role, table_key, key, name, fit.why, table.fields[name])
            else:
                self.missing(table_key, key, defaults, table)
        return names

    def missing(self, table_key: str, key: str, defaults: FieldTable, table: TableProfile | None) -> None:
        default = getattr(defaults, key)
        dotted = f"{table_key}.{key}"
        if table is not None and default and default in table.fields:
            self.out.put(table_key, key, default, f"'{default}' (the default name) is a field here")
            return
        if _required(dotted):
            self.out.put(table_key, key, default, f"NOT FOUND: required - nothing in the sample looks like it; "
                         f"the default '{default}' is kept: name the tenant's field")
            return
        fallback = FALLBACKS.get(dotted)
        self.out.put(table_key, key, "", "no field in the sample looks like it: absent (\"\")"
                     + (f"; fallback: {fallback}" if fallback else ""))

    # -- customers ------------------------------------------------------------------------------
    def customer(self) -> None:
        begun = self.begin("customer")
        if begun is None:
            return
        path, table, taken = begun
        key = "fields.customer"
        defaults = self.base.fields.customer
        code = _customer_code(self.tenant, path)
        if code.value:
            self.put_field("customer", key, "code", code.value, code.why, table.fields[code.value])
            taken.add(code.value)
        else:
            self.missing(key, "code", defaults, table)
        address_names = self.addresses("customer", key, table, taken, defaults.addresses)
        taken |= address_names
        found = self.concepts("customer", key, table, C.CUSTOMER_CONCEPTS, taken, defaults)
        self.groups(table, taken, found)
        self.flags(table, found)
        self.customer_status(table, found)
        self.catch_all(path, code.value, found.get("email", ""))

    def groups(self, table: TableProfile, taken: set[str], found: dict[str, str]) -> None:
        groups = [p for name, p in table.fields.items() if name not in taken
                  and word_score(name, C.GROUP) >= 0.6 and p.looks("code") >= 0.9 and 1 <= p.distinct <= 50]
        if groups:
            names = [p.name for p in groups[:4]]
            self.out.put("fields.customer", "groups", names, "codes whose names say group/class/type: "
                         + ", ".join(f"'{n}'" for n in names))
        else:
            self.out.put("fields.customer", "groups", [], "no group/class/type code in the sample")

    def flags(self, table: TableProfile, found: dict[str, str]) -> None:
        for key in ("email_optin", "sms_optin", "delete_flag"):
            name = found.get(key)
            if name:
                values = table.fields[name].flag_values() or frozenset()
                self.yes |= {v for v in values if v.lower() in YES_WORDS}

    def customer_status(self, table: TableProfile, found: dict[str, str]) -> None:
        name = found.get("status")
        if not name:
            self.out.put("customer_status", "active", list(self.base.customer_status.active),
                         "no status field: every customer is active (the first of these codes is what "
                         "erp_status says)")
            return
        counts = table.fields[name].counts()
        seen = ", ".join(f"{code!r} x{n}" for code, n in counts.most_common(8))
        known = set(self.base.customer_status.active + self.base.customer_status.inactive)
        if set(counts) <= known:
            self.out.notes.append(f"customer status codes seen: {seen} (all known to customer_status)")
            return
        self.out.put("customer_status", "active", list(self.base.customer_status.active),
                     f"CHECK: status codes seen in '{name}': {seen}; name the active ones here and the inactive "
                     "ones in 'inactive' (any other code is an exception)")

    def catch_all(self, path: str, code: str, email: str) -> None:
        order = self.path("order")
        if not code or not email or order is None:
            return
        records = self.tenant.samples[path].records
        no_email = {str(r.get(code, "")).strip() for r in records if not str(r.get(email) or "").strip()}
        ref = self.out.entries.get("fields.order", {}).get("customer")
        if not ref or not no_email:
            return
        counts = Counter(str(r.get(ref.value, "")).strip() for r in self.tenant.samples[order].records)
        guests = [c for c in no_email if counts[c] >= 2]
        if guests:
            self.out.put("lifecycle", "catch_all_customers", sorted(guests),
                         f"customers without an e-mail address named by many orders ({', '.join(sorted(guests))}): "
                         "catch-all accounts (web guests), whose shopper's e-mail is the profile")

    # -- addresses ------------------------------------------------------------------------------
    def addresses(self, role: str, key: str, table: TableProfile, taken: set[str],
                  defaults: AddressFields) -> set[str]:
        table_key = f"{key}.addresses"
        groups = address_blocks([n for n in table.fields if n not in taken])
        if groups:
            bill = max(groups, key=lambda p: (word_score(p, C.BILL), -len(p)))
            ship_candidates = [p for p in groups if p != bill]
            ship = max(ship_candidates, key=lambda p: (word_score(p, C.SHIPTO), -len(p))) if ship_candidates else None
            self.out.put(table_key, "layout", "flat", "address fields held on the record under the prefixes "
                         + ", ".join(f"'{p}'" for p in groups))
            self.out.put(table_key, "bill_to_prefix", bill, f"'{bill}' fields: the bill-to")
            if ship is not None:
                self.out.put(table_key, "ship_to_prefix", ship, f"'{ship}' fields: the ship-to")
            fields = {name[len(bill):]: table.fields[name] for name in groups[bill]}
            sub = TableProfile(table.records, {n: _renamed(p, n) for n, p in fields.items()})
            self.concepts(role, table_key, sub, C.ADDRESS_CONCEPTS, set(), defaults, "addresses.")
            return {n for under in groups.values() for n in under}
        for child, rows in table.children.items():
            type_field = next((p for p in rows.fields.values() if p.looks("code") >= 0.9 and 1 <= p.distinct <= 4
                               and word_score(p.name, C.ADDR_TYPE) > 0), None)
            if type_field is None or not address_blocks(["x_" + n for n in rows.fields]):
                continue
            self.out.put(table_key, "layout", "rows", f"'{child}': child rows with address fields")
            self.out.put(table_key, "rows", child, f"'{child}': child rows told apart by '{type_field.name}'")
            self.out.put(table_key, "addr_type", type_field.name,
                         f"'{type_field.name}': values {sorted(type_field.counts())}")
            codes = sorted(type_field.counts())
            bill = max(codes, key=lambda c: word_score(c, C.BILL))
            ship = max([c for c in codes if c != bill] or [self.base.fields.customer.addresses.ship_to],
                       key=lambda c: word_score(c, C.SHIPTO))
            self.out.put(table_key, "bill_to", bill, f"the {type_field.name} value that says bill-to")
            self.out.put(table_key, "ship_to", ship, f"the {type_field.name} value that says ship-to")
            self.concepts(role, table_key, rows, C.ADDRESS_CONCEPTS, {type_field.name}, defaults, "addresses.")
            return set()
        self.out.notes.append(f"fields.{role}.addresses: no address block found (neither prefixed fields nor "
                              "address rows); the defaults are kept")
        return set()

    # -- documents ------------------------------------------------------------------------------
    def documents(self) -> None:
        paths = {role: path for role in DOCUMENTS if (path := self.path(role))}
        owned = document_numbers(self.tenant, list(paths.values()))
        numbers = {role: owned[path].name for role, path in paths.items() if path in owned}
        customer_path = self.path("customer")
        customer_code = self.out.entries.get("fields.customer", {}).get("code")
        codes = self.tenant.values(customer_path, customer_code.value) if customer_path and customer_code else set()
        for role in DOCUMENTS:
            begun = self.begin(role)
            if begun is None:
                continue
            path, table, taken = begun
            key = f"fields.{role}"
            defaults: FieldTable = getattr(self.base.fields, role)
            number = numbers.get(role)
            if number:
                p = table.fields[number]
                self.put_field(role, key, "number", number, f"'{number}' is unique in every sampled record"
                               + self._pointed_at(role, number), p)
                taken.add(number)
            else:
                self.missing(key, "number", defaults, table)
            refs = {"order": ("customer",), "pick": ("order", "invoice"), "invoice": ("order", "pick"),
                    "creditmemo": ("order", "invoice")}[role]
            for ref in refs:
                self.reference(role, key, ref, path, table, numbers, codes, taken, defaults)
            self.addresses_of_document(role, key, table, taken)
            concepts = {"order": C.ORDER_CONCEPTS, "pick": C.PICK_CONCEPTS, "invoice": C.INVOICE_CONCEPTS,
                        "creditmemo": C.MEMO_CONCEPTS}[role]
            found = self.concepts(role, key, table, concepts, taken, defaults)
            self.lines(role, key, table, defaults)
            if role == "order":
                self.order_statuses(table, found)
            if role == "pick":
                self.shipped(table, found)
            if role == "creditmemo" and found.get("restock"):
                values = table.fields[found["restock"]].flag_values() or frozenset()
                self.yes |= {v for v in values if v.lower() in YES_WORDS}

    def _pointed_at(self, role: str, number: str) -> str:
        values = self.tenant.values(self.path(role) or "", number)
        by = []
        for other in DOCUMENTS:
            path = self.path(other)
            if other == role or path is None:
                continue
            ref = self.tenant.references(path, values)
            if ref and ref[1] >= 0.8:
                by.append(f"'{path}'.'{ref[0].name}'")
        return f"; {', '.join(by)} point at it" if by else ""

    def reference(self, role: str, key: str, target: str, path: str, table: TableProfile, numbers: dict[str, str],
                  codes: set[str], taken: set[str], defaults: FieldTable) -> None:
        if target == "customer":
            values = codes
            label = "customer codes"
        else:
            target_path = self.path(target)
            values = self.tenant.values(target_path, numbers[target]) if target_path and target in numbers else set()
            label = f"{target} numbers"
        ref = self.tenant.references(path, values, skip=sorted(taken)) if values else None
        if ref is not None and ref[1] >= 0.5:
            p, share = ref
            why = f"'{p.name}': {share:.0%} of its values are {label} (e.g. {', '.join(p.examples(2))})"
        else:
            target_name = numbers.get(target, "") if target != "customer" else self._customer_code_name()
            found = _shaped_like(table, values, target_name, C.ROLE_WORDS[target], taken)
            if found is None:
                self.missing(key, target, defaults, table)
                return
            p, why = found
        self.put_field(role, key, target, p.name, why, p)
        taken.add(p.name)

    def _customer_code_name(self) -> str:
        code = self.out.entries.get("fields.customer", {}).get("code")
        return str(code.value) if code else ""

    def addresses_of_document(self, role: str, key: str, table: TableProfile, taken: set[str]) -> None:
        defaults = getattr(self.base.fields, role)
        if isinstance(getattr(defaults, "addresses", None), AddressFields):
            taken |= self.addresses(role, key, table, taken, defaults.addresses)
        else:
            for under in address_blocks([n for n in table.fields if n not in taken]).values():
                taken |= set(under)

    def lines(self, role: str, key: str, table: TableProfile, defaults: FieldTable) -> None:
        child = line_collection(table)
        line_key = f"{key}.lines"
        line_defaults = defaults.lines  # type: ignore[attr-defined]
        if child is None:
            self.out.put(line_key, "rows", line_defaults.rows, "NOT FOUND: no child rows with quantities; the "
                         "default is kept")
            return
        rows = table.children[child]
        self.out.put(line_key, "rows", child, f"'{child}': {rows.records} child rows with quantities and codes")
        concepts = [c if c.key not in ("qty", "cancel_qty") else _line_quantity(c, role) for c in C.LINE_CONCEPTS]
        taken: set[str] = set()
        style_path = self.path("style")
        style_code = self.out.entries.get("fields.style", {}).get("style")
        if style_path and style_code:
            ref = self.tenant.references_rows(rows, self.tenant.values(style_path, style_code.value))
            if ref is not None:
                p, share = ref
                self.put_field(role, line_key, "style", p.name, f"'{p.name}': {share:.0%} of its values are style "
                               "codes", p)
                taken.add(p.name)
                concepts = [c for c in concepts if c.key != "style"]
        self.concepts(role, line_key, rows, concepts, taken, line_defaults)

    def order_statuses(self, table: TableProfile, found: dict[str, str]) -> None:
        name = found.get("status")
        if not name:
            return
        counts = table.fields[name].counts()
        seen = ", ".join(f"{code!r} x{n}" for code, n in counts.most_common(10))
        life = self.base.lifecycle
        known = set(life.entered + life.confirmed + life.on_hold + life.cancelled + life.closed)
        if set(counts) <= known:
            self.out.notes.append(f"order status codes seen: {seen} (all known to [lifecycle])")
            return
        self.out.put("lifecycle", "confirmed", list(life.confirmed),
                     f"CHECK: order status codes seen in '{name}': {seen} - none of the lifecycle's codes. Put each in "
                     "one of entered / confirmed / on_hold / cancelled / closed (an unmapped code is an "
                     "unknown_status exception)")

    def shipped(self, table: TableProfile, found: dict[str, str]) -> None:
        status, ship_date = found.get("status"), found.get("ship_date")
        shipped_value = self.base.fields.pick.shipped_value
        values = table.fields[status].counts() if status else Counter()
        if status and shipped_value in values:
            return
        if ship_date:
            seen = ", ".join(repr(v) for v in sorted(values)) or "none"
            self.out.put("fields.pick", "shipped_when", {"field": ship_date, "present": True},
                         f"no pick status says shipped ('{shipped_value}'; seen: {seen}): a ticket with a ship date "
                         "is taken as shipped - CHECK")

    # -- catalog and stock ----------------------------------------------------------------------
    def style(self) -> None:
        begun = self.begin("style")
        if begun is None:
            return
        path, table, taken = begun
        key = "fields.style"
        defaults = self.base.fields.style
        self.own_code("style", "style", self._owner_code(path, ("inventory", *DOCUMENTS), C.STYLE), table, taken)
        self.concepts("style", key, table, C.STYLE_CONCEPTS, taken, defaults)
        with_upcs = (name for name, rows in table.children.items()
                     if any(p.looks("upc") >= 0.8 for p in rows.fields.values()))
        skus = next(with_upcs, None) or next(iter(table.children), None)
        if skus is None:
            self.out.put(key, "skus", defaults.skus, "NOT FOUND: no child rows; the default is kept")
            return
        self.out.put(key, "skus", skus, f"'{skus}': {table.children[skus].records} child rows (the SKU matrix)")
        self.concepts("style", key, table.children[skus], C.SKU_CONCEPTS, set(), defaults)

    def own_code(self, role: str, key: str, code: FieldProfile | None, table: TableProfile, taken: set[str]) -> None:
        """The record's own code (a style's, a location's), or the default marked when none was found."""
        if code is None:
            self.missing(f"fields.{role}", key, getattr(self.base.fields, role), table)
            return
        self.put_field(role, f"fields.{role}", key, code.name, f"'{code.name}' is unique in every sampled {role} "
                       f"(e.g. {', '.join(code.examples(2))})", code)
        taken.add(code.name)

    def _owner_code(self, path: str, referrers: Sequence[str], words: C.Words) -> FieldProfile | None:
        best: tuple[float, FieldProfile] | None = None
        for candidate in self.tenant.number_candidates(path):
            values = set(candidate.texts)
            referenced = 0.0
            for role in referrers:
                other = self.path(role)
                if other is None:
                    continue
                ref = self.tenant.references(other, values)
                line = line_collection(self.tenant.tables[other])
                rows = self.tenant.tables[other].children[line] if line else None
                in_rows = self.tenant.references_rows(rows, values) if rows else None
                referenced = max(referenced, ref[1] if ref else 0.0, in_rows[1] if in_rows else 0.0)
            score = referenced + 0.3 * word_score(candidate.name, words + C.CODE) + 0.2 * (candidate.position <= 1)
            if best is None or score > best[0]:
                best = (score, candidate)
        return best[1] if best else None

    def inventory(self) -> None:
        begun = self.begin("inventory")
        if begun is None:
            return
        path, table, taken = begun
        key = "fields.inventory"
        defaults = self.base.fields.inventory
        for target, words in (("style", C.STYLE), ("location", C.WAREHOUSE)):
            target_path = self.path(target)
            target_key = "style" if target == "style" else "code"
            known = self.out.entries.get(f"fields.{target}", {}).get(target_key)
            values = self.tenant.values(target_path, known.value) if target_path and known else set()
            mapping_key = "style" if target == "style" else "warehouse"
            ref = self.tenant.references(path, values, skip=sorted(taken)) if values else None
            if ref is not None and ref[1] >= 0.5:
                p, share = ref
                self.put_field("inventory", key, mapping_key, p.name, f"'{p.name}': {share:.0%} of its values are "
                               f"{target} codes", p)
                taken.add(p.name)
                continue
            fallback = next((p for n, p in table.fields.items() if n not in taken and word_score(n, words) >= 0.6
                             and p.looks("code") >= 0.9), None)
            if fallback is not None:
                self.put_field("inventory", key, mapping_key, fallback.name, f"'{fallback.name}': the name says "
                               f"{target}", fallback)
                taken.add(fallback.name)
            else:
                self.missing(key, mapping_key, defaults, table)
        self.concepts("inventory", key, table, C.INVENTORY_CONCEPTS, taken, defaults)

    def location(self) -> None:
        begun = self.begin("location")
        if begun is None:
            return
        path, table, taken = begun
        key = "fields.location"
        defaults = self.base.fields.location
        self.own_code("location", "code", self._owner_code(path, ("inventory", "order"), C.WAREHOUSE), table, taken)
        self.concepts("location", key, table, C.LOCATION_CONCEPTS, taken, defaults)

    # -- habits ---------------------------------------------------------------------------------
    def habits(self) -> None:
        for table_key, keys in self.padded.items():
            self.out.put(table_key, "normalise", {k: ["trim"] for k in sorted(keys)},
                         "values padded with spaces: trimmed before they are fingerprinted, so padding is no change")
        if self.formats:
            ordered = [f for family in DATE_FAMILIES for f in family if f in self.formats]
            self.out.put("tenant", "date_formats", ordered, "dates in the sample written so (ISO 8601 is always "
                         "read too): " + ", ".join(ordered))
        extra = sorted(v for v in self.yes if v not in self.base.fields.customer.yes_values)
        if extra:
            values = list(self.base.fields.customer.yes_values) + extra
            self.out.put("fields.customer", "yes_values", values, f"flags in the sample say yes with {extra}")

    def build(self) -> Suggestion:
        self.resources()
        self.customer()
        self.style()  # before the documents: their line rows point at style codes
        self.location()
        self.inventory()
        self.documents()
        self.catch_all_again()
        self.habits()
        return self.out

    def catch_all_again(self) -> None:
        """The guests are told by the orders' customer field, which is read after the customers."""
        path = self.path("customer")
        code = self.out.entries.get("fields.customer", {}).get("code")
        email = self.out.entries.get("fields.customer", {}).get("email")
        if path and code and email:
            self.catch_all(path, code.value, email.value)


def _shaped_like(table: TableProfile, values: set[str], target_name: str, words: C.Words, taken: set[str]
                 ) -> tuple[FieldProfile, str] | None:
    """A reference whose values the sample cannot show inside the target's (a sample of 200 orders and memos of
    others): the field named as the target's number, or whose values are written like it and whose name says
    the target (patterns: 'A9999999')."""
    shapes = {pattern_of(v) for v in values}
    best: tuple[float, FieldProfile, str] | None = None
    for p in table.fields.values():
        if p.name in taken or not p.filled or not shapes:
            continue
        alike = sum(pattern_of(t) in shapes for t in p.texts) / p.filled
        inside = len(set(p.texts) & values) / len(set(p.texts))  # what the sample does show of it
        same_name = bool(target_name) and p.name == target_name
        score = (1.0 if same_name else 0.0) + (0.5 if alike >= 0.9 else 0.0) + 0.6 * word_score(p.name, words) + inside
        if score >= 0.8 and alike >= 0.5 and (best is None or score > best[0]):
            why = (f"'{p.name}': named as their number; " if same_name else f"'{p.name}': ") + (
                f"values written alike ({alike:.0%}, e.g. {', '.join(p.examples(2))}), {inside:.0%} of them in the "
                "sample (too few of the others are sampled to see them all point at it)")
            best = (score, p, why)
    return (best[1], best[2]) if best else None


def _line_quantity(concept: C.Concept, role: str) -> C.Concept:
    if concept.key == "qty":
        return C.Concept("qty", concept.words, concept.kinds, C.LINE_QTY_BONUS[role], concept.label)
    return C.Concept("cancel_qty", (C.LINE_CANCEL_WORDS[role],), concept.kinds, C.QTY, concept.label)


def _renamed(profile: FieldProfile, name: str) -> FieldProfile:
    return FieldProfile(name, profile.total, profile.missing, profile.empty, profile.texts, profile.share,
                        profile.padded, profile.upper, profile.is_bool, profile.numeric, profile.position)


def _field_keys(table_key: str) -> tuple[str, ...]:
    """The field keys `normalise` may name in a [fields.*] table ("fields.order.lines" -> LineFields')."""
    parts = table_key.split(".")
    if parts[0] != "fields":
        return ()
    model: Any = Fields()
    for part in parts[1:]:
        model = getattr(model, part, None)
        if model is None:
            return ()
    return type(model).field_keys() if isinstance(model, FieldTable) else ()


def _required(dotted: str) -> bool:
    return any(fnmatchcase(dotted, pattern) for pattern in REQUIRED_FIELDS)


def assign_roles_of(samples: Sequence[Sample], region: str = "US") -> dict[str, str]:
    """Which sampled path holds which resource (`check` uses it to read a resource whose mapped path fails)."""
    return {role: guess.value for role, guess in assign_roles(_Tenant(samples, region)).items()}


def suggest_mapping(samples: Sequence[Sample], region: str = "US", base: TenantMapping | None = None) -> Suggestion:
    """The mapping a sample suggests (`base`: the defaults it starts from and falls back on)."""
    tenant = _Tenant(samples, region)
    roles = assign_roles(tenant)
    builder = _Builder(tenant, roles, base or TenantMapping())
    suggestion = builder.build()
    for sample in samples:
        if sample.error is not None:
            suggestion.notes.append(f"'{sample.path}' could not be read: {sample.error}")
    unused = sorted(set(tenant.tables) - {g.value for g in roles.values()})
    if unused:
        suggestion.notes.append("sampled but not taken for any resource: " + ", ".join(f"'{p}'" for p in unused))
    return suggestion


# --- TOML -------------------------------------------------------------------------------------------

HEADER = """# A starting mapping written by `bcsync mapping suggest` from a sample of the tenant.
# Every key below is a guess with its evidence in the comment above it; "NOT FOUND" and "CHECK" mark what
# needs a person. Edit, then run `bcsync mapping check --mapping <this file>` until it passes.
# A key left out keeps its documented default (docs/configuration.md); a field named "" is absent.
"""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string (\uXXXX escapes included)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _comment(text: str) -> list[str]:
    words, lines, line = text.split(), [], "#"
    for word in words:
        if len(line) + len(word) + 1 > 110 and line != "#":
            lines.append(line)
            line = "#"
        line += " " + word
    lines.append(line)
    return lines


TABLE_ORDER = ("tenant", "resources", "fields", "customer_status", "lifecycle")


def render_toml(suggestion: Suggestion) -> str:
    lines = HEADER.splitlines()
    for note in suggestion.notes:
        lines += _comment(f"Note: {note}")
    order = {name: i for i, name in enumerate(TABLE_ORDER)}
    role_order = {role: i for i, role in enumerate(C.ROLES)}

    def rank(table: str) -> tuple[int, int, str]:
        parts = table.split(".")
        role = parts[1] if len(parts) > 1 else ""
        return order.get(parts[0], 99), role_order.get(role, 99), table

    for table in sorted(suggestion.entries, key=rank):
        lines += ["", f"[{table}]"]
        for key, guess in suggestion.entries[table].items():
            lines += _comment(guess.why)
            lines.append(f"{_toml_key(key)} = {_toml_value(guess.value)}")
    return "\n".join(lines) + "\n"
