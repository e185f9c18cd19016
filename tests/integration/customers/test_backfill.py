"""`bcsync backfill customers`: a dry run sends nothing; a run interrupted mid-way resumes from its Redis
checkpoint and every customer arrives in Klaviyo exactly once, through bulk imports on the batch lane."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from sync.operations import Operation
from tests.integration.customers.conftest import CustomerFleet, marketing
from tests.support.fleet import wait_for
from workers.backfill_customers import CustomerBackfill, backfill_customers, checkpoint_key, cli_context

pytestmark = pytest.mark.integration
PROFILE_IMPORT = "POST /api/profile-import"


def profile_rows_sent(fleet: CustomerFleet) -> int:
    """Profiles Klaviyo received: rows of bulk import jobs plus single imports."""
    jobs = fleet.state()["jobs"].values()
    bulk = sum(int(j["total_count"]) for j in jobs if "profile-bulk-import" in j["type"])
    return bulk + fleet.received(PROFILE_IMPORT)


def test_backfill_dry_run_then_an_interrupted_run_resumes(fleet: CustomerFleet) -> None:
    httpx.post(f"{fleet.bc_url}/_sandbox/clock", json={"advance": 60}, timeout=10).raise_for_status()
    since = httpx.get(f"{fleet.bc_url}/_sandbox/clock", timeout=10).json()["now"]
    touched = fleet.apply({"op": "burst", "resource": "customer", "count": 12})  # one last_mod, two pages
    plain = [t["record"]["customer"] for t in touched if t["resource"] == "customer"]
    consenting = [fleet.new_customer(email=f"opt{i}.e2e@example.com", email_optin="Y")["customer"]
                  for i in range(3)]
    bad = fleet.new_customer(email="not-an-email")["customer"]
    valid = set(plain) | set(consenting)
    cli = typer.Typer()
    cli.command()(backfill_customers)

    # --dry-run --verbose: every operation printed, nothing sent, recorded or stored
    out = CliRunner().invoke(cli, ["--since", since, "--dry-run", "--verbose"], env=fleet.env)
    assert out.exit_code == 0, out.output
    ops = [Operation.model_validate(json.loads(line)) for line in out.stdout.splitlines() if line.startswith("{")]
    assert {op.payload["external_id"] for op in ops if op.kind == "profile_upsert"} == valid
    subscribes = [op for op in ops if op.kind == "subscribe"]
    assert {op.profile_of for op in subscribes} == set(consenting)
    assert all(op.lane == "batch" for op in ops)
    assert all(op.payload["historical_import"] and op.payload["consented_at"] for op in subscribes)
    assert f"would record 1 invalid_record, e.g. customer:{bad}: " in out.output
    fleet.wait_idle()
    writes = {k: v["received"] for k, v in fleet.stats()["endpoints"].items() if not k.startswith("GET ")}
    assert fleet.state()["profiles"] == {} and sum(writes.values()) == 0, writes
    assert fleet.exceptions.get("invalid_record", f"customer:{bad}") is None
    assert not fleet.redis.exists(checkpoint_key(cli_context()))

    # a run interrupted at its second chunk: the first chunk is queued and checkpointed
    ctx = cli_context()
    real_submit = ctx.submit
    first: list[Operation] = []

    def interrupted(operations: list[Operation]) -> Any:
        if first:
            raise KeyboardInterrupt
        first.extend(operations)
        return real_submit(operations)

    ctx.submit = interrupted
    with pytest.raises(KeyboardInterrupt):
        CustomerBackfill(ctx, fleet.bc, chunk=5).run(since)
    assert first and fleet.redis.exists(checkpoint_key(ctx))

    # resumed through the command line: only the rest is sent
    out = CliRunner().invoke(cli, ["--since", since, "--chunk", "5"], env=fleet.env)
    assert out.exit_code == 0, out.output
    assert "resuming an interrupted run" in out.output
    wait_for(lambda: valid <= {p.get("external_id") for p in fleet.state()["profiles"].values()}, 60,
             message="every backfilled profile")
    fleet.wait_idle()
    for code in consenting:
        fleet.wait_profile(code, lambda p: marketing(p, "email") == "SUBSCRIBED", f"{code} subscribed")
    assert profile_rows_sent(fleet) == len(valid), "a profile was sent twice (or not at all)"
    assert fleet.state()["jobs"] and any("profile-bulk-import" in j["type"] for j in fleet.state()["jobs"].values())
    assert bad not in {p.get("external_id") for p in fleet.state()["profiles"].values()}
    problem = fleet.exceptions.get("invalid_record", f"customer:{bad}")
    assert problem is not None and "email" in problem.reason and problem.owner == "operations"
    assert not fleet.redis.exists(checkpoint_key(ctx))
    assert fleet.dead_letters() == 0 and fleet.stats()["duplicates_suppressed"] == 0
