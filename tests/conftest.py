"""One Spark session for the whole test run; a fresh project home per test."""

from __future__ import annotations

import pytest

from riskcontrol.config import Settings

TEST_PII_KEY = "test-only-pii-key-0123456789abcdef"


def make_settings(home, **overrides) -> Settings:
    values = {
        "home": home,
        "env": "test",
        "pii_key": TEST_PII_KEY,
        "spark_shuffle_partitions": 2,
        "spark_driver_memory": "3g",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from riskcontrol.spark import get_spark

    session = get_spark(make_settings(tmp_path_factory.mktemp("spark-home")))
    yield session
    session.stop()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path)
