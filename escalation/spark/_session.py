"""A local Spark session with the traps handled: workers run this Python,
the driver binds loopback, small files still split into partitions."""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["local_session"]


def local_session(cores: int = 2, *, app: str = "escalation", partition_bytes: int = 4 << 20) -> Any:
    """A ``local[cores]`` SparkSession for trying ``escalation.spark`` on one
    machine (tests, the guide, benchmarks). Sets ``PYSPARK_PYTHON`` to this
    interpreter (else workers run whatever ``python3`` is first on PATH,
    without escalation), binds the driver to 127.0.0.1 (else it binds a
    non-loopback address), lowers ``spark.sql.files.maxPartitionBytes`` (else
    a small file is one partition: one core) and keeps shuffles small. On a
    cluster use the session the platform gives you instead."""
    from escalation._extras import require

    require("spark", "escalation.spark")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app)
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.files.maxPartitionBytes", str(partition_bytes))
        .config("spark.sql.shuffle.partitions", str(max(2, cores)))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
