"""A faithful in-memory Klaviyo API for tests, demos and benchmarks (see docs/sandbox.md)."""
