"""The integration suite's broker fixtures (embedded Tansu by default, TEST_BROKER picks)."""

from tests.integration.conftest import broker, kit, names

__all__ = ["broker", "kit", "names"]
