"""Fixtures shared by the delivery tests."""

from tests.integration.delivery.test_fleet_delivery import fleet_factory  # noqa: F401 - the real-workers fleet fixture
