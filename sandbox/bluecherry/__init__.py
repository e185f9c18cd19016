"""Blue Cherry sandbox: a bcapi-compatible tenant with a scenario engine, faults and CSV report drops.

Standalone: imports nothing from the product. Entry point for tests: ``sandbox.bluecherry.app.create_app``.
"""
