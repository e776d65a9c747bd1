"""One Spark session for the whole test run; a fresh project home per test."""

from __future__ import annotations

import logging

import pytest

from riskcontrol.config import Settings

TEST_PII_KEY = "test-only-pii-key-0123456789abcdef"
# py4j logs at INFO while the interpreter shuts down, after pytest closed its streams.
logging.getLogger("py4j").setLevel(logging.WARNING)


def make_settings(home, **overrides) -> Settings:
    values = {
        "home": home,
        "env": "test",
        "pii_key": TEST_PII_KEY,
        "spark_shuffle_partitions": 2,
        "spark_driver_memory": "3g",
        # Tests run many small, different queries: the C1 JIT alone compiles them sooner.
        "spark_conf": {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1"},
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
