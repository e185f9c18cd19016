"""`bcsync mapping check` and `bcsync mapping suggest`: onboarding a Blue Cherry tenant by configuration alone.

Both read a sample of the live tenant through the Blue Cherry client (`BlueCherryClient`, the settings' URL and
key) and hand it to the pure analysis (`sync.onboarding`): `check` judges a mapping file by the product's own
parsers and exits non-zero when it would reject more than `--max-reject` of any resource's records or cannot read
one; `suggest` writes a commented starting mapping. docs/operations.md, "Onboarding a tenant".
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from config.mapping import Mapping, MappingError, ResourceMapping, get_mapping, load_mapping
from config.settings import get_settings
from connectors.bluecherry.client import MAX_PAGE_SIZE, BlueCherryClient
from connectors.bluecherry.errors import BlueCherryAuthError, BlueCherryError
from sync.fields import field_text, normalised
from sync.onboarding.check import DEFAULT_MAX_REJECT, RESOURCES, Read, check_mapping
from sync.onboarding.suggest import Sample, assign_roles_of, find_records, listed_paths, suggest_mapping
from workers.mapping_report import render_check

app = typer.Typer(help="Onboard a tenant: check a mapping against it, or suggest one from it.",
                  no_args_is_help=True)

PAST_THE_END = 100_000  # a page number no tenant reaches: what it answers is its answer to "no records"
NO_SUCH_PATH = "_bcsync_no_such_resource_"  # asked once: some gateways list the resources they serve


class Tenant:
    """Samples of the live tenant, read through the Blue Cherry client."""

    def __init__(self, client: BlueCherryClient, size: int) -> None:
        self.client = client
        self.size = max(1, size)
        self.listed: list[str] = []

    def records(self, spec: ResourceMapping) -> list[dict[str, Any]]:
        """Up to `size` records of a resource as the mapping says to read it (the poller's own reading)."""
        found: list[dict[str, Any]] = []
        for page in self.client.iter_pages(spec, None, page_size=min(self.size, MAX_PAGE_SIZE)):
            found += page
            if len(found) >= self.size:
                break
        return found[: self.size]

    def probe(self, path: str) -> Sample:
        """A path as it answers, whatever the mapping says: its records, where they are, and what it answers for
        a page past the last one (a 404 or an empty page)."""
        size = min(self.size, MAX_PAGE_SIZE)
        records: list[Any] = []
        envelope = ""
        page = 1
        try:
            while len(records) < self.size:
                found = find_records(self.client.read_body(path, {"_pgno": page, "_pgsize": size,
                                                                  "_include": "all"}))
                if found is None:
                    return Sample(path, (), error="no list of records in its answer")
                records += found[0]
                envelope = found[1]
                if len(found[0]) < size:
                    break
                page += 1
        except BlueCherryAuthError:
            raise
        except BlueCherryError as exc:
            self.listed += [p for p in listed_paths(exc.api_message) if p not in self.listed]
            return Sample(path, (), error=str(exc))
        return Sample(path, tuple(records[: self.size]), envelope, self._empty_answer(path))

    def _empty_answer(self, path: str) -> Any:
        try:
            body = self.client.read_body(path, {"_pgno": PAST_THE_END, "_pgsize": min(self.size, MAX_PAGE_SIZE)})
        except BlueCherryAuthError:
            raise
        except BlueCherryError as exc:
            return "404" if exc.status == 404 else ""
        found = find_records(body)
        return "empty" if found is not None and not found[0] else ""

    def discover(self, paths: Sequence[str]) -> list[Sample]:
        """Samples of `paths`, and of the paths the tenant lists when asked for one it does not serve."""
        samples = {path: self.probe(path) for path in dict.fromkeys(paths)}
        if not self.listed:
            self.probe(NO_SUCH_PATH)
        for path in self.listed:
            if path not in samples:
                samples[path] = self.probe(path)
        return [s for s in samples.values() if s.path != NO_SUCH_PATH]


def _client(mapping: Mapping) -> BlueCherryClient:
    settings = get_settings()
    # a check is interactive: a 429 or a 5xx is retried a little, never for a minute
    return BlueCherryClient(settings.bluecherry_base_url, settings.bluecherry_subscription_key.get_secret_value(),
                            timeout=settings.bluecherry_timeout_seconds, max_attempts=min(3, settings.
                                                                                          bluecherry_max_attempts),
                            backoff_base_seconds=0.2, backoff_max_seconds=2.0, mapping=mapping)


def _mapping_of(path: Path | None) -> Mapping:
    if path is None:
        return get_mapping()
    try:
        return load_mapping(path)
    except MappingError as exc:
        typer.echo(f"mapping refused:\n{exc}", err=True)
        raise typer.Exit(2) from None


@app.command("check")
def check(
    resource: Annotated[list[str] | None, typer.Option("--resource", "-r", help="only this resource (repeatable): "
                                                       + ", ".join(RESOURCES))] = None,
    sample: Annotated[int, typer.Option(help="records read per resource", min=1, max=2000)] = 50,
    mapping_file: Annotated[Path | None, typer.Option("--mapping", help="the mapping file to check (default: "
                                                      "BCSYNC_MAPPING_FILE, else the defaults)")] = None,
    max_reject: Annotated[float, typer.Option(help="fail when a resource rejects more than this share of its "
                                              "sampled records", min=0.0, max=1.0)] = DEFAULT_MAX_REJECT,
    as_json: Annotated[bool, typer.Option("--json", help="the whole report as JSON")] = False,
) -> None:
    """Read a sample of every resource of the live tenant and say what the mapping makes of it: per mapped field
    filled / blank / not there / failing, lookalike fields, what the fleet would send, the mismatches, a verdict.
    Exit 1 when the mapping would reject more than --max-reject of a resource's records or cannot read one."""
    chosen = resource or list(RESOURCES)
    unknown = [r for r in chosen if r not in RESOURCES]
    if unknown:
        typer.echo(f"unknown resource {', '.join(unknown)} (known: {', '.join(RESOURCES)})", err=True)
        raise typer.Exit(2)
    mapping = _mapping_of(mapping_file)
    with _client(mapping) as client:
        tenant = Tenant(client, sample)
        try:
            reads = _reads(tenant, mapping, chosen)
            documents = _order_documents(tenant, mapping, reads)
        except BlueCherryAuthError as exc:
            typer.echo(f"cannot check: {exc}", err=True)
            raise typer.Exit(2) from None
    report = check_mapping(reads, mapping, max_reject=max_reject, documents=documents)
    where = str(mapping_file or get_settings().mapping_file or "the documented defaults")
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        typer.echo(render_check(report, mapping_file=where, tenant=get_settings().bluecherry_base_url, sample=sample))
    raise typer.Exit(0 if report.passed else 1)


def _reads(tenant: Tenant, mapping: Mapping, resources: Sequence[str]) -> list[Read]:
    """Each resource as the mapping reads it; one that cannot be read is looked for among the paths the tenant
    answers, and checked there, so the report names every mismatch, not only the path."""
    reads: dict[str, Read] = {}
    for name in resources:
        spec: ResourceMapping = getattr(mapping.resources, name)
        try:
            reads[name] = Read(name, spec.path, tuple(tenant.records(spec)))
        except BlueCherryAuthError:
            raise
        except BlueCherryError as exc:
            tenant.listed += [p for p in listed_paths(exc.api_message) if p not in tenant.listed]
            reads[name] = Read(name, spec.path, error=str(exc))
    failed = [name for name, read in reads.items() if read.error]
    if failed:
        readable = [read.path for read in reads.values() if not read.error]
        samples = tenant.discover(readable)
        roles = assign_roles_of(samples, mapping.tenant.default_phone_region)
        by_path = {s.path: s for s in samples}
        for name in failed:
            found = roles.get(name)
            if found is None or found == reads[name].path:
                continue
            substitute = by_path[found]
            reads[name] = Read(name, reads[name].path, substitute.records, reads[name].error, found,
                               substitute.envelope)
    return [reads[name] for name in resources]


def _order_documents(tenant: Tenant, mapping: Mapping, reads: Sequence[Read]) -> dict[str, list[dict[str, Any]]]:
    """The picks, invoices and memos of the first sampled orders (asked by order number, as the order flow
    knows them), so the order previews show each order's whole life; what cannot be asked is left out."""
    order = next((r for r in reads if r.resource == "order" and not r.error), None)
    if order is None:
        return {}
    fields = mapping.fields.order
    numbers = [n for raw in order.records[:3] if (n := field_text(normalised(raw, fields), fields.number))]
    documents: dict[str, list[dict[str, Any]]] = {}
    for name in ("pick", "invoice", "creditmemo"):
        spec: ResourceMapping = getattr(mapping.resources, name)
        link = getattr(mapping.fields, name).order
        for number in numbers:
            try:
                for page in tenant.client.iter_pages(spec, None, extra_filter=f"{link} eq '{number}'"):
                    documents.setdefault(name, []).extend(page)
            except BlueCherryError:
                break
    return documents


@app.command("suggest")
def suggest(
    path: Annotated[list[str] | None, typer.Option("--path", "-p", help="a resource path of the tenant "
                                                   "(repeatable); default: the mapping's paths and any the tenant "
                                                   "lists")] = None,
    sample: Annotated[int, typer.Option(help="records read per path", min=1, max=2000)] = 200,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write the mapping here (default: stdout)")] = None,
) -> None:
    """Write a starting mapping from a sample of the live tenant: which path holds what, every field name, date
    formats and habits, each guess with its evidence in a comment. Edit it, then `bcsync mapping check`."""
    mapping = get_mapping()
    paths = list(path or [getattr(mapping.resources, r).path for r in RESOURCES])
    with _client(mapping) as client:
        try:
            samples = Tenant(client, sample).discover(paths)
        except BlueCherryAuthError as exc:
            typer.echo(f"cannot read the tenant: {exc}", err=True)
            raise typer.Exit(2) from None
    readable = [s for s in samples if s.error is None]
    if not readable:
        typer.echo("no path answered with records: name the tenant's resource paths with --path "
                   f"({'; '.join(f'{s.path}: {s.error}' for s in samples)})", err=True)
        raise typer.Exit(1)
    suggestion = suggest_mapping(samples, mapping.tenant.default_phone_region)
    text = suggestion.toml()
    problem = _loads(text)
    if problem:  # never hand out a file the fleet refuses
        typer.echo(f"the suggested mapping does not load (a bug): {problem}", err=True)
        raise typer.Exit(1)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
    found = ", ".join(f"{role} = '{guess.value}'" for role, guess in suggestion.roles.items())
    open_items = sum(g.why.startswith(("NOT FOUND", "CHECK")) for t in suggestion.entries.values() for g in t.values())
    typer.echo(f"resources: {found or 'none found'}; {open_items} key(s) marked NOT FOUND or CHECK"
               + (f"; written to {out}" if out else ""), err=True)


def _loads(text: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "suggested.toml"
        file.write_text(text, encoding="utf-8")
        try:
            load_mapping(file)
        except MappingError as exc:
            return str(exc)
    return ""
