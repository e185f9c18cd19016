"""`bcsync mapping check`: what a mapping makes of a sample of a live tenant, decided by the product's own
parsers, so the report says exactly what the fleet would do.

Per resource: every record goes through what the fleet runs on it - the poller's checks (key, last_mod read
with the resource's date formats, catch-all customers skipped), then the resource's parser (customers,
orders, picks, invoices, memos, styles with the catalog templates, inventory rows) - and is accepted, skipped,
excluded by the lifecycle's filters or rejected (an `invalid_record` and its kin). Per mapped field: in how many
records it is filled, blank or not there at all, and how many records fail on it, with examples. Unmapped
fields that look like a mapped concept (`sync.onboarding.concepts`: by their values and names). What the fleet
would send for a few records of each kind (`sync.onboarding.preview`). The mismatches, each named by its mapping
key with what the sample shows and, where the sample says it, what to write instead. The verdict: the mapping
fails when a resource cannot be read or rejects more than `max_reject` of its sampled records.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping as AnyMapping
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from config.mapping import (
    FALLBACKS,
    AddressFields,
    FieldTable,
    LineFields,
    Mapping,
    StyleFields,
)
from sync.catalog.records import RecordError, Style, parse_style
from sync.catalog.templates import TemplateError
from sync.catalog.transform import CatalogTransform
from sync.customers.records import CustomerRecord, parse_customer
from sync.fields import field_text, normalised
from sync.localtime import local_to_utc, tenant_zone
from sync.misfits import Misfit, unparseable_date
from sync.onboarding import concepts as C
from sync.onboarding.evidence import concept_fit
from sync.onboarding.preview import (
    Preview,
    catalog_previews,
    customer_previews,
    order_previews,
    stock_previews,
)
from sync.onboarding.shapes import (
    YES_WORDS,
    child_rows,
    formats_for,
    is_empty,
    profile_field,
    profile_records,
    text_of,
)
from sync.onboarding.suggest import address_blocks, line_collection
from sync.orders.lifecycle import exclusion_reason
from sync.orders.problems import InvalidRecord
from sync.orders.records import OrderHeader, parse_credit_memo, parse_invoice, parse_order, parse_pick
from sync.stock.ats import InventoryRow, parse_inventory_row

RESOURCES = ("customer", "order", "pick", "invoice", "creditmemo", "style", "inventory", "location")
DEFAULT_MAX_REJECT = 0.05  # a mapping problem rejects nearly everything; a few bad records are the data's
FLAG_KEYS = ("fields.customer.email_optin", "fields.customer.sms_optin", "fields.customer.delete_flag",
             "fields.creditmemo.restock")


@dataclass(frozen=True)
class Read:
    """What reading one resource of the tenant gave. `error`: the mapping's own read failed (a 404, a response
    shape it does not know); `substitute`: the path the records were read from instead, because its records
    look like this resource (`suggest.assign_roles`), with where they were in the body (`envelope`)."""

    resource: str
    path: str
    records: tuple[AnyMapping[str, Any], ...] = ()
    error: str | None = None
    substitute: str | None = None
    envelope: str | None = None


@dataclass(frozen=True)
class FieldFinding:
    """One mapped field over the sample: `checked` places (records, or rows for line and SKU fields, or records
    times two for flat addresses), filled / blank / not there; `failures`: records that fail on it."""

    key: str
    name: str
    checked: int = 0
    present: int = 0
    empty: int = 0
    missing: int = 0
    failures: int = 0
    examples: tuple[str, ...] = ()
    note: str = ""

    def share(self, count: int) -> float:
        return count / self.checked if self.checked else 0.0


@dataclass(frozen=True)
class Lookalike:
    """An unmapped field that looks like the concept of a mapping key (which maps `mapped`)."""

    field: str
    key: str
    concept: str
    why: str
    mapped: str


@dataclass(frozen=True)
class Mismatch:
    """Where the mapping and the tenant disagree. `blocking`: records are rejected (or cannot be read) for it."""

    key: str
    detail: str
    suggestion: str = ""
    blocking: bool = False


@dataclass
class ResourceReport:
    resource: str
    path: str
    records: int = 0
    read_error: str | None = None
    substitute: str | None = None
    rejected: int = 0
    skipped: int = 0
    excluded: int = 0
    warnings: int = 0
    rejections: list[str] = field(default_factory=list)
    fields: list[FieldFinding] = field(default_factory=list)
    lookalikes: list[Lookalike] = field(default_factory=list)
    previews: list[Preview] = field(default_factory=list)

    @property
    def checked(self) -> int:
        return self.records - self.skipped

    @property
    def reject_share(self) -> float:
        if self.read_error and not self.substitute:
            return 1.0
        return self.rejected / self.checked if self.checked else 0.0


@dataclass
class CheckReport:
    resources: list[ResourceReport]
    mismatches: list[Mismatch]
    max_reject: float

    @property
    def failures(self) -> list[str]:
        """Why the mapping fails (empty: it passes)."""
        reasons = []
        for r in self.resources:
            if r.read_error:
                reasons.append(f"{r.resource}: '{r.path}' cannot be read"
                               + (f" (and of '{r.substitute}' in its place, {r.rejected} of {r.checked} records would "
                                  "be rejected)" if r.substitute else f": {r.read_error}"))
            elif r.checked and r.reject_share > self.max_reject:
                reasons.append(f"{r.resource}: {r.rejected} of {r.checked} sampled records rejected "
                               f"({r.reject_share:.0%} > {self.max_reject:.0%})")
        return reasons

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "failures": self.failures, "max_reject": self.max_reject,
                "mismatches": [asdict(m) for m in self.mismatches],
                "resources": [asdict(r) | {"reject_share": r.reject_share} for r in self.resources]}


# --- which fields the mapping reads, and where ------------------------------------------------------


@dataclass(frozen=True)
class Mapped:
    """A mapped field: its dotted key, ERP name, and where it lives - on the record (`rows` ""), in the child
    collection `rows`, or flat on the record under each of `prefixes`."""

    key: str
    name: str
    rows: str = ""
    prefixes: tuple[str, ...] = ()
    collection: bool = False  # the key names a child collection itself (lines.rows, skus)


def mapped_fields(mapping: Mapping, resource: str) -> list[Mapped]:
    spec = getattr(mapping.resources, resource)
    found = [Mapped(f"resources.{resource}.key", spec.key), Mapped(f"resources.{resource}.last_mod", spec.last_mod)]
    if spec.sequence_field:
        found.append(Mapped(f"resources.{resource}.sequence_field", spec.sequence_field))
    found += _table(getattr(mapping.fields, resource), f"fields.{resource}", "", ())
    return found


def _table(table: FieldTable, prefix: str, rows: str, prefixes: tuple[str, ...]) -> list[Mapped]:
    found: list[Mapped] = []
    if isinstance(table, AddressFields):
        if table.layout == "flat":
            prefixes, rows = (table.bill_to_prefix, table.ship_to_prefix), ""
        else:
            found.append(Mapped(f"{prefix}.rows", table.rows, collection=True))
            rows = table.rows
    if isinstance(table, LineFields):
        found.append(Mapped(f"{prefix}.rows", table.rows, collection=True))
        rows = table.rows
    for key in type(table).field_keys():
        name = getattr(table, key) or ""
        if isinstance(table, AddressFields) and table.layout == "flat" and key == "addr_type":
            continue
        if isinstance(table, StyleFields) and key == "skus":
            found.append(Mapped(f"{prefix}.skus", name, collection=True))
            continue
        where = table.skus if isinstance(table, StyleFields) and key.startswith("sku_") else rows
        found.append(Mapped(f"{prefix}.{key}", name, where, prefixes))
    for index, name in enumerate(getattr(table, "groups", ()) or ()):
        found.append(Mapped(f"{prefix}.groups[{index}]", name))
    predicate = getattr(table, "shipped_when", None)
    if predicate is not None:
        found.append(Mapped(f"{prefix}.shipped_when.field", predicate.field))
    for name in type(table).model_fields:
        sub = getattr(table, name)
        if isinstance(sub, FieldTable):
            found += _table(sub, f"{prefix}.{name}", rows, prefixes)
    return found


def _values(records: Sequence[AnyMapping[str, Any]], mapped: Mapped) -> list[Any]:
    """The field's value at every place it lives in the sample (`_MISSING` where the place has no such column)."""
    if mapped.collection:
        return [record.get(mapped.name, _MISSING) for record in records]
    places: list[AnyMapping[str, Any]] = []
    if mapped.rows:
        for record in records:
            found = child_rows(record.get(mapped.rows))
            places += found[0] if found else []
        if not places:
            return [_MISSING] * len(records)
    else:
        places = list(records)
    if mapped.prefixes:
        return [place.get(f"{p}{mapped.name}", _MISSING) for place in places for p in mapped.prefixes]
    return [place.get(mapped.name, _MISSING) for place in places]


class _Missing:
    pass


_MISSING: Any = _Missing()


# --- what the fleet does with each record -------------------------------------------------------------


@dataclass
class _Judgement:
    problems: list[tuple[str, str]] = field(default_factory=list)  # (ERP field or "", text)
    misfits: list[Misfit] = field(default_factory=list)
    skipped: str = ""
    excluded: str = ""
    warning: str = ""
    parsed: Any = None

    @property
    def rejected(self) -> bool:
        return bool(self.problems) and not self.skipped


def _poller(resource: str, raw: AnyMapping[str, Any], mapping: Mapping, ref: str) -> _Judgement:
    """What the poller refuses before any parser: no key, or a last_mod it cannot place in time."""
    spec = getattr(mapping.resources, resource)
    judged = _Judgement()
    if raw.get(spec.key) in (None, ""):
        judged.problems.append((spec.key, f"record has no '{spec.key}'"))
    stamp = raw.get(spec.last_mod)
    formats = mapping.date_formats(resource)
    if is_empty(stamp):
        judged.problems.append((spec.last_mod, f"'{spec.last_mod}' is missing: the poller cannot place it in time"))
        return judged
    try:
        local_to_utc(str(stamp), tenant_zone(mapping.tenant.timezone), formats)
    except ValueError:
        judged.problems.append((spec.last_mod, f"'{spec.last_mod}' {stamp!r} is not a date the mapping reads"))
        judged.misfits.append(unparseable_date(resource, spec.last_mod, str(stamp).strip(), ref, formats))
    return judged


def judge(resource: str, raw: AnyMapping[str, Any], mapping: Mapping) -> _Judgement:
    """What the fleet does with one raw record of `resource`, by the product's own parsers."""
    ref = _ref(resource, raw, mapping)
    if resource == "customer":
        table = mapping.fields.customer
        if field_text(normalised(raw, table), table.code) in mapping.lifecycle.catch_all_customers:
            return _Judgement(skipped="a catch-all account (lifecycle.catch_all_customers)")
    judged = _poller(resource, raw, mapping, ref)
    if judged.problems:
        return judged
    reader = _READERS[resource]
    reader(raw, mapping, judged)
    return judged


def _ref(resource: str, raw: AnyMapping[str, Any], mapping: Mapping) -> str:
    table = getattr(mapping.fields, resource)
    name = {"customer": "code", "style": "style", "location": "code"}.get(resource, "number")
    own = field_text(normalised(raw, table), getattr(table, name, "") or "")
    spec = getattr(mapping.resources, resource)
    return f"{resource}:{own or text_of(raw.get(spec.key)) or '?'}"


def _customer(raw: AnyMapping[str, Any], mapping: Mapping, judged: _Judgement) -> None:
    parsed = parse_customer(dict(raw), mapping)
    judged.problems += [(_named_field(text), text) for text in parsed.problems]
    judged.misfits += getattr(parsed, "misfits", [])
    judged.warning = parsed.unusable_phone or ""
    judged.parsed = parsed.customer


def _documents(parse: Any) -> Any:
    def read(raw: AnyMapping[str, Any], mapping: Mapping, judged: _Judgement) -> None:
        try:
            judged.parsed = parse(raw, mapping)
        except InvalidRecord as exc:
            judged.problems += [(p.field, str(p)) for p in exc.problems]
            judged.misfits += [p.misfit for p in exc.problems if p.misfit is not None]
            return
        if isinstance(judged.parsed, OrderHeader):
            judged.excluded = exclusion_reason(judged.parsed, mapping) or ""
    return read


def _style(raw: AnyMapping[str, Any], mapping: Mapping, judged: _Judgement) -> None:
    try:
        style = parse_style(raw, mapping.fields.style, mapping.resources.style.last_mod, mapping.date_formats("style"))
    except RecordError as exc:
        judged.problems.append((_named_field(exc.reason), str(exc)))
        judged.misfits += list(getattr(exc, "misfits", ()))
        return
    judged.parsed = style
    try:
        problems = CatalogTransform(mapping).operations(style).problems
    except TemplateError as exc:
        judged.problems.append(("", f"catalog templates: {exc}"))
        return
    judged.problems += [(_named_field(p.reason), f"{p.record}: {p.reason} (catalog_error)") for p in problems]


def _inventory(raw: AnyMapping[str, Any], mapping: Mapping, judged: _Judgement) -> None:
    try:
        judged.parsed = parse_inventory_row(raw, mapping.fields.inventory, mapping.resources.inventory.last_mod,
                                            mapping.date_formats("inventory"))
    except RecordError as exc:
        judged.problems.append((_named_field(exc.reason), str(exc)))


def _location(raw: AnyMapping[str, Any], mapping: Mapping, judged: _Judgement) -> None:
    table = mapping.fields.location
    if not field_text(normalised(raw, table), table.code):
        judged.problems.append((table.code, f"no location code in '{table.code}'"))
    judged.parsed = raw


_READERS: dict[str, Any] = {
    "customer": _customer, "order": _documents(parse_order), "pick": _documents(parse_pick),
    "invoice": _documents(parse_invoice), "creditmemo": _documents(parse_credit_memo), "style": _style,
    "inventory": _inventory, "location": _location,
}
_NAMED = re.compile(r"\(([^()\s]+)\)|'([^'\s]+)'")


def _named_field(text: str) -> str:
    """The ERP field a parser's message names: '(email_addr)' or "'chg_stamp'"; "" when none."""
    match = _NAMED.search(text)
    return (match.group(1) or match.group(2)) if match else ""


# --- the report -------------------------------------------------------------------------------------


def check_mapping(reads: Sequence[Read], mapping: Mapping, *, max_reject: float = DEFAULT_MAX_REJECT,
                  previews: int = 3, documents: AnyMapping[str, Sequence[AnyMapping[str, Any]]] | None = None,
                  ) -> CheckReport:
    """The report of `mapping` on the sampled `reads`. `documents`: extra picks / invoices / memos (of the sampled
    orders) for the order previews."""
    by_resource = {read.resource: read for read in reads}
    reports: list[ResourceReport] = []
    mismatches: list[Mismatch] = []
    parsed: dict[str, list[tuple[Any, AnyMapping[str, Any]]]] = {}
    for resource in RESOURCES:
        read = by_resource.get(resource)
        if read is None:
            continue
        report, found, good = _resource(read, mapping, max_reject)
        reports.append(report)
        mismatches += found
        parsed[resource] = good
    mismatches += _cross_checks({r.resource: r.records for r in reads}, mapping)
    _previews(reports, parsed, by_resource, documents or {}, mapping, previews, mismatches)
    return CheckReport(reports, _merged(mismatches), max_reject)


def _resource(read: Read, mapping: Mapping, max_reject: float
              ) -> tuple[ResourceReport, list[Mismatch], list[tuple[Any, AnyMapping[str, Any]]]]:
    resource = read.resource
    report = ResourceReport(resource, read.path, len(read.records), read.error, read.substitute)
    mismatches: list[Mismatch] = []
    if read.error:
        suggestion = (f"'{read.substitute}' holds records that look like {resource} records: the rest of this "
                      "report reads them" if read.substitute else "")
        mismatches.append(Mismatch(f"resources.{resource}.path", f"'{read.path}': {read.error}", suggestion, True))
        spec = getattr(mapping.resources, resource)
        if read.substitute and read.envelope is not None and read.envelope != spec.envelope and (
                read.envelope or spec.envelope):
            mismatches.append(Mismatch(f"resources.{resource}.envelope", f"'{read.substitute}' holds its records "
                                       f"at '{read.envelope or 'data.header'}'",
                                       f"envelope = \"{read.envelope}\"" if read.envelope else "envelope = \"\""))
    judged = [judge(resource, raw, mapping) for raw in read.records]
    misfits: list[Misfit] = []
    good: list[tuple[Any, AnyMapping[str, Any]]] = []
    for raw, j in zip(read.records, judged, strict=True):
        misfits += j.misfits
        report.skipped += bool(j.skipped)
        report.excluded += bool(j.excluded) and not j.rejected
        report.warnings += bool(j.warning)
        if j.rejected:
            report.rejected += 1
            text = "; ".join(text for _, text in j.problems)[:300]
            if len(report.rejections) < 5 and text not in report.rejections:
                report.rejections.append(text)
        elif not j.skipped and j.parsed is not None:
            good.append((j.parsed, raw))
    report.fields = _findings(read, judged, mapping)
    report.lookalikes = _lookalikes(read, report.fields, mapping)
    mismatches += _field_mismatches(report, read, mapping, max_reject)
    mismatches += _misfit_mismatches(misfits, read)
    return report, mismatches, good


def _findings(read: Read, judged: Sequence[_Judgement], mapping: Mapping) -> list[FieldFinding]:
    findings = []
    for mapped in mapped_fields(mapping, read.resource):
        if not mapped.name:
            fallback = FALLBACKS.get(mapped.key)
            findings.append(FieldFinding(mapped.key, "", note="absent by the mapping"
                                         + (f": {fallback}" if fallback else " (read as empty)")))
            continue
        values = _values(read.records, mapped)
        missing = sum(1 for v in values if v is _MISSING)
        empty = sum(1 for v in values if v is not _MISSING and (is_empty(v) or v in ([], {})))
        failing = [j for j in judged if any(name and _names(name, mapped) for name, _ in j.problems)]
        examples = tuple(next(text for name, text in j.problems if name and _names(name, mapped))[:200]
                         for j in failing[:3])
        findings.append(FieldFinding(mapped.key, mapped.name, len(values), len(values) - missing - empty, empty,
                                     missing, len(failing), examples))
    return findings


def _names(problem_field: str, mapped: Mapped) -> bool:
    if mapped.prefixes:
        return problem_field in {f"{p}{mapped.name}" for p in mapped.prefixes}
    return problem_field == mapped.name


STAMP_CONCEPT = C.Concept("last_mod", (C.STAMP_WORDS,), ("datetime",), label="last-modified stamp")
KEY_CONCEPT = C.Concept("key", (C.KEY_WORDS,), ("integer",), label="record key")


def _concept(key: str) -> C.Concept | None:
    """The concept behind a mapping key ("fields.customer.email" -> the e-mail concept)."""
    if key.startswith("resources."):
        return {"last_mod": STAMP_CONCEPT, "key": KEY_CONCEPT}.get(key.rsplit(".", 1)[-1])
    parts = key.split(".")
    if len(parts) < 3 or parts[0] != "fields":
        return None
    resource, rest = parts[1], ".".join(parts[2:])
    pool: tuple[C.Concept, ...] = C.TABLE_CONCEPTS.get(resource, ()) + C.REFERENCE_CONCEPTS.get(resource, ())
    if rest.startswith("addresses."):
        pool = C.ADDRESS_CONCEPTS
    elif rest.startswith("lines."):
        pool, rest = C.LINE_CONCEPTS, rest.removeprefix("lines.")
    elif rest.startswith("sku_"):
        pool = C.SKU_CONCEPTS
    return next((c for c in pool if c.key == rest), None)


NOTABLE = frozenset({"email", "phone", "flag", "date"})  # kinds worth naming even where the mapping is fine


def _places(read: Read, mapped: Sequence[Mapped]) -> dict[str, list[AnyMapping[str, Any]]]:
    """Where mapped fields are read: "" = the records, else each child collection the mapping names."""
    places: dict[str, list[AnyMapping[str, Any]]] = {"": list(read.records)}
    for m in mapped:
        if m.rows and m.rows not in places:
            places[m.rows] = [row for record in read.records
                              for row in (child_rows(record.get(m.rows)) or ([], ""))[0]]
    return places


def _lookalikes(read: Read, findings: Sequence[FieldFinding], mapping: Mapping) -> list[Lookalike]:
    """Unmapped fields that look like a concept the mapping reads at the same place (the record, or a child
    collection's rows), best fit first: any that fits a key whose mapped field is absent, not there, blank or
    failing; and e-mail-, phone-, yes/no- and date-looking ones anyway. Columns of a flat address block the
    mapping does not read flat are left to the layout's own mismatch."""
    mapped = mapped_fields(mapping, read.resource)
    by_key = {f.key: f for f in findings}
    blocks = {n for names in _flat_blocks(read, mapping).values() for n in names}
    found: list[tuple[float, Lookalike]] = []
    for place, rows in _places(read, mapped).items():
        here = [m for m in mapped if m.rows == place and not m.collection]
        names = {m.name for m in here if m.name and not m.prefixes}
        names |= {f"{p}{m.name}" for m in here if m.prefixes for p in m.prefixes}
        columns: list[str] = []
        for row in rows:
            columns += [n for n, v in row.items() if n not in columns and not isinstance(v, dict | list)]
        for name in (n for n in columns if n not in names and not (place == "" and n in blocks)):
            profile = profile_field(name, [r.get(name) for r in rows])
            for m in here:
                concept, finding = _concept(m.key), by_key[m.key]
                fit = concept_fit(profile, concept) if concept is not None else None
                if concept is None or fit is None or fit.score < 1.2:
                    continue
                unhealthy = not finding.name or finding.missing == finding.checked or finding.failures > 0 or (
                    finding.checked > 0 and finding.empty / finding.checked >= 0.9)
                if unhealthy or fit.kind in NOTABLE:
                    found.append((fit.score, Lookalike(name, m.key, concept.describe(), fit.why, finding.name)))
    kept: list[Lookalike] = []
    for _, lookalike in sorted(found, key=lambda pair: -pair[0]):
        if sum(look.key == lookalike.key for look in kept) < 2:  # the two best per key
            kept.append(lookalike)
    return kept[:24]


def _flat_blocks(read: Read, mapping: Mapping) -> dict[str, list[str]]:
    """Flat address blocks of the records (prefix -> columns) where the mapping reads the addresses as rows."""
    table = getattr(mapping.fields, read.resource)
    spec = getattr(table, "addresses", None)
    if not isinstance(spec, AddressFields) or spec.layout == "flat":
        return {}
    columns: list[str] = []
    for record in read.records:
        columns += [n for n in record if n not in columns]
    return address_blocks(columns)


def _field_mismatches(report: ResourceReport, read: Read, mapping: Mapping, max_reject: float) -> list[Mismatch]:
    mismatches = _layout_mismatches(read, mapping)
    hints: dict[str, Lookalike] = {}
    for look in report.lookalikes:  # best first: the first lookalike of a key is its hint
        hints.setdefault(look.key, look)
    mapped = {m.key: m for m in mapped_fields(mapping, report.resource)}
    lost = {m.name for m in mapped.values() if m.collection and m.name and read.records
            and all(child_rows(r.get(m.name)) is None for r in read.records)}
    where = report.substitute or report.path
    for finding in report.fields:
        m = mapped.get(finding.key)
        if not finding.name or not finding.checked or m is None or (m.rows and m.rows in lost):
            continue  # a field of a child collection that is not there: the collection's own mismatch says it
        hint = hints.get(finding.key)
        suggestion = f"'{hint.field}' looks like it ({hint.why})" if hint else ""
        if m.collection and m.name in lost:
            suggestion = suggestion or _collection_hint(read, finding.key)
            mismatches.append(Mismatch(finding.key, f"'{finding.name}' is not a child collection of '{where}': "
                                       "nothing under it is read", suggestion))
        elif finding.missing == finding.checked:
            place = f"in any row of '{m.rows}'" if m.rows else "in any sampled record"
            mismatches.append(Mismatch(finding.key, f"'{finding.name}' is not a field of '{where}' ({place})",
                                       suggestion, finding.failures > 0))
        elif finding.failures and finding.failures / max(report.checked, 1) > max_reject:
            mismatches.append(Mismatch(finding.key, f"'{finding.name}': {finding.failures} of {report.checked} "
                                       f"records fail on it, e.g. {finding.examples[0]}", suggestion, True))
    return mismatches


def _collection_hint(read: Read, key: str) -> str:
    """The child collection of the records that looks like what the key names (line rows, a SKU matrix)."""
    table = profile_records(list(read.records))
    if key.endswith("lines.rows"):
        found = line_collection(table)
        return f"'{found}' holds line rows" if found else ""
    if key.endswith(".skus"):
        found = next((name for name, rows in table.children.items()
                      if any(p.looks("upc") >= 0.8 for p in rows.fields.values())), None)
        return f"'{found}' holds SKU rows with UPCs" if found else ""
    return ""


def _layout_mismatches(read: Read, mapping: Mapping) -> list[Mismatch]:
    """Addresses read as child rows from records that hold them flat under prefixes."""
    blocks = _flat_blocks(read, mapping)
    if not blocks:
        return []
    prefixes = sorted(blocks)
    return [Mismatch(f"fields.{read.resource}.addresses.layout", "the records hold their addresses flat, under "
                     + ", ".join(f"'{p}'" for p in prefixes) + " (e.g. " + ", ".join(blocks[prefixes[0]][:3])
                     + "), not as child rows", "layout = \"flat\" with bill_to_prefix / ship_to_prefix among "
                     + ", ".join(f"'{p}'" for p in prefixes))]


def _misfit_mismatches(misfits: Sequence[Misfit], read: Read) -> list[Mismatch]:
    """A status the mapping does not name, a date no format reads: one mismatch per value or field."""
    seen: dict[str, list[Misfit]] = {}
    for misfit in misfits:
        seen.setdefault(misfit.key, []).append(misfit)
    mismatches = []
    for key, group in seen.items():
        first = group[0]
        if first.type == "unknown_status":
            target = first.details.get("mapping_key", "lifecycle")
            mismatches.append(Mismatch(target, f"{len(group)} sampled record(s) with status {key.split('=')[-1]!r} "
                                       f"({key.split('=')[0]}), which the mapping does not name",
                                       "name it in one of the stages", True))
        else:
            values = [str(m.example.get("value", "")) for m in group]
            formats = formats_for(values)
            fix = (f"tenant.date_formats = {list(formats)} (or resources.{read.resource}.date_formats) reads them"
                   if formats else "")
            mismatches.append(Mismatch(f"resources.{read.resource}.date_formats", f"{len(group)} value(s) of "
                                       f"'{first.details.get('field', key)}' no configured format reads, e.g. "
                                       f"{values[0]!r}", fix, True))
    return mismatches


def _cross_checks(records: AnyMapping[str, Sequence[AnyMapping[str, Any]]], mapping: Mapping) -> list[Mismatch]:
    """What the parsers accept but the fleet would still get wrong: consent flags no value of which reads as
    yes, a pick status that never says shipped (over every sampled record, rejected or not)."""
    mismatches = []
    yes = set(mapping.fields.customer.yes_values)
    for key in FLAG_KEYS:
        resource, name = key.split(".")[1], key.split(".")[2]
        table = getattr(mapping.fields, resource)
        column = getattr(table, name)
        values = Counter(text_of(raw.get(column)) for raw in records.get(resource, ()) if column)
        values.pop("", None)
        if len(values) >= 2 and not set(values) & yes:
            looks_yes = sorted(v for v in values if v.lower() in YES_WORDS)
            mismatches.append(Mismatch("fields.customer.yes_values", f"'{column}' ({key}) holds {sorted(values)}: "
                                       "none of them is one of yes_values, so it never reads as yes",
                                       f"add {looks_yes} to yes_values" if looks_yes else ""))
    picks = list(records.get("pick", ()))
    spec = mapping.fields.pick
    if picks and spec.shipped_when is None:
        statuses = Counter(field_text(normalised(raw, spec), spec.status) for raw in picks)
        dated = sum(1 for raw in picks if field_text(raw, spec.ship_date))
        if spec.shipped_value not in statuses and dated:
            mismatches.append(Mismatch("fields.pick.shipped_value", f"no sampled pick has status "
                                       f"{spec.shipped_value!r} (seen: {sorted(statuses)}), yet {dated} have a ship "
                                       "date: no Fulfilled Order would be sent",
                                       f"shipped_when = {{ field = \"{spec.ship_date}\", present = true }}"))
    return mismatches


def _previews(reports: list[ResourceReport], parsed: AnyMapping[str, list[tuple[Any, AnyMapping[str, Any]]]],
              reads: AnyMapping[str, Read], documents: AnyMapping[str, Sequence[AnyMapping[str, Any]]],
              mapping: Mapping, count: int, mismatches: list[Mismatch]) -> None:
    by_resource = {r.resource: r for r in reports}
    if "customer" in by_resource:
        customers = [p for p, _ in parsed.get("customer", ()) if isinstance(p, CustomerRecord)]
        by_resource["customer"].previews = customer_previews(customers, mapping, count)
    if "order" in by_resource:
        held = {r: _unique(r, [*(raw for _, raw in parsed.get(r, ())), *documents.get(r, ())], mapping)
                for r in ("pick", "invoice", "creditmemo")}
        orders = [(p, raw) for p, raw in parsed.get("order", ()) if isinstance(p, OrderHeader)]
        by_resource["order"].previews = order_previews(orders, held, mapping, count)
    styles = [p for p, _ in parsed.get("style", ()) if isinstance(p, Style)]
    if "style" in by_resource:
        by_resource["style"].previews = catalog_previews(styles, mapping, count)
    if "inventory" in by_resource:
        rows = [p for p, _ in parsed.get("inventory", ()) if isinstance(p, InventoryRow)]
        locations = [raw for _, raw in parsed.get("location", ())] if "location" in reads else []
        view = stock_previews(rows, locations, styles, mapping, count)
        by_resource["inventory"].previews = view.previews
        if view.catalog_ids and not view.matching_ids:
            mismatches.append(Mismatch("catalog.variant_external_id", f"none of the {view.catalog_ids} sampled SKUs "
                                       "in both the styles and the inventory gets the catalog's variant id from the "
                                       f"stock side, e.g. {view.examples[0]}: stock would wait for variants that "
                                       "never exist", blocking=True))


def _unique(resource: str, records: Sequence[AnyMapping[str, Any]], mapping: Mapping
            ) -> list[AnyMapping[str, Any]]:
    """Records by their key, once (a document both sampled and asked for by its order)."""
    key = getattr(mapping.resources, resource).key
    seen: dict[str, AnyMapping[str, Any]] = {}
    for record in records:
        seen.setdefault(text_of(record.get(key)) or str(id(record)), record)
    return list(seen.values())


def _merged(mismatches: Sequence[Mismatch]) -> list[Mismatch]:
    """One mismatch per key and detail, in the order found."""
    seen: dict[tuple[str, str], Mismatch] = {}
    for mismatch in mismatches:
        seen.setdefault((mismatch.key, mismatch.detail), mismatch)
    return list(seen.values())
