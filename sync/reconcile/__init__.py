"""Reconciliation, pure: what Klaviyo must hold (computed by the fleet's own functions) against what it holds,
as typed differences with an owner, both values, a suggested action and - for the ones the fleet owns - the
operations that repair them. No Redis, no HTTP: the readers live in connectors/, the run in flows/reconcile."""
