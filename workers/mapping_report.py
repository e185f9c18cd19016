"""The text of a `bcsync mapping check` report: per resource what the fleet would do with the sample, every
mapped field, lookalike fields and what the fleet would send; then the mismatches and the verdict."""

from __future__ import annotations

import json
from typing import Any

from sync.onboarding.check import CheckReport, FieldFinding, ResourceReport
from sync.onboarding.preview import Preview

WIDTH = 120


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def _short(value: Any, limit: int = WIDTH - 12) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field_line(finding: FieldFinding) -> str:
    if not finding.name:
        return f"  {finding.key:<42} {'(absent)':<18} {finding.note}"
    failing = f"{finding.failures} failing" if finding.failures else ""
    return (f"  {finding.key:<42} {finding.name:<18} filled {_pct(finding.present, finding.checked):>4}  blank "
            f"{_pct(finding.empty, finding.checked):>4}  not there {_pct(finding.missing, finding.checked):>4}"
            f"  {failing}").rstrip()


def _preview_lines(preview: Preview) -> list[str]:
    lines = [f"    {preview.record}" + (f"  ({_short(preview.note, 80)})" if preview.note else "")]
    for op in preview.operations:
        if op["kind"] == "event":
            payload = op["payload"]
            lines.append(f"      event {payload['metric']!r} unique_id={payload['unique_id']} value={payload['value']}"
                         f" time={payload['time']} profile={_short(payload['profile'], 60)}")
            props = {k: v for k, v in payload["properties"].items() if k not in ("Items", "BillingAddress",
                                                                                 "ShippingAddress")}
            lines.append(f"        properties {_short(props, WIDTH - 20)}")
        elif "payload" in op:
            lines.append(f"      {op['kind']} {_short(op['payload'], WIDTH - 10 - len(op['kind']))}")
        else:
            lines.append(f"      {op['kind']} {op.get('channel', '')}")
    if not preview.operations:
        lines.append("      (nothing)")
    return lines


def _resource_lines(r: ResourceReport) -> list[str]:
    where = f"'{r.path}'" + (f" (read from '{r.substitute}' instead)" if r.substitute else "")
    lines = ["", f"== {r.resource}  {where}"]
    if r.read_error and not r.substitute:
        return [*lines, f"  cannot be read: {r.read_error}"]
    if r.read_error:
        lines.append(f"  the mapping's path cannot be read: {r.read_error}")
    if not r.records:
        return [*lines, "  no records in the sample: nothing to check"]
    accepted = r.checked - r.rejected
    lines.append(f"  {r.records} records: {accepted} accepted, {r.rejected} rejected ({_pct(r.rejected, r.checked)})"
                 + (f", {r.skipped} skipped (catch-all accounts)" if r.skipped else "")
                 + (f", {r.excluded} left out by the lifecycle's filters" if r.excluded else "")
                 + (f", {r.warnings} with a warning (unusable phone)" if r.warnings else ""))
    lines += [f"  rejected, e.g. {_short(text, WIDTH - 18)}" for text in r.rejections[:3]]
    lines.append("  mapped fields (of the places each is read: records, line rows, SKU rows, bill-to and ship-to):")
    lines += [_field_line(f) for f in r.fields]
    for finding in r.fields:
        lines += [f"    {finding.key} fails: {_short(example, WIDTH - 30)}" for example in finding.examples[:2]]
    if r.lookalikes:
        lines.append("  unmapped fields that look like a mapped concept:")
        lines += [f"    '{look.field}' looks like the {look.concept} ({look.key} = '{look.mapped}'): "
                  f"{_short(look.why, 70)}" for look in r.lookalikes]
    if r.previews:
        lines.append("  what the fleet would send (a first sync):")
        for preview in r.previews:
            lines += _preview_lines(preview)
    return lines


def render_check(report: CheckReport, *, mapping_file: str, tenant: str, sample: int) -> str:
    lines = [f"bcsync mapping check: mapping {mapping_file}, tenant {tenant}, up to {sample} records per resource"]
    for resource in report.resources:
        lines += _resource_lines(resource)
    lines += ["", f"== mismatches ({len(report.mismatches)})"]
    for m in report.mismatches:
        mark = "!" if m.blocking else "-"
        lines.append(f" {mark} {m.key}: {m.detail}")
        if m.suggestion:
            lines.append(f"     -> {m.suggestion}")
    if not report.mismatches:
        lines.append("   none")
    lines.append("")
    if report.passed:
        extra = f" ({len(report.mismatches)} mismatch(es) to look at)" if report.mismatches else ""
        lines.append(f"VERDICT: PASS - no resource rejects more than {report.max_reject:.0%} of its sample{extra}")
    else:
        lines.append("VERDICT: FAIL")
        lines += [f"  {reason}" for reason in report.failures]
    return "\n".join(lines)
