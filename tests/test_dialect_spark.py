"""Every metric of the library, compiled for Spark SQL and run on a real Spark (local mode,
PySpark + the machine's Java), gives the same numbers as on DuckDB.

Golden files only show what the spark SQL looks like; this runs it. Same dataset and query set
as the PostgreSQL parity test (tests/parity.py); tables go to Spark through Arrow.
"""

from __future__ import annotations

import pytest

from parity import normalised, parity_queries, same_rows, two_at_a_time, warehouse_tables
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.settings import PROJECT_ROOT

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(PROJECT_ROOT / "semantic")


@pytest.fixture(scope="module")
def spark(parity_duck, spark_session):
    tables = warehouse_tables(parity_duck)
    for name in tables:
        arrow = parity_duck.sql(f'SELECT * FROM "{name}"').to_arrow_table()
        spark_session.createDataFrame(arrow).createOrReplaceTempView(name)
    yield spark_session
    for name in tables:
        spark_session.catalog.dropTempView(name)


def test_every_metric_matches_duckdb(layer, parity_duck, spark):
    mismatches, checked = [], 0
    queries = parity_queries(layer)
    sqls = [layer.compile(q, dialect="spark") for _, q in queries]
    # Spark answers two at a time (parity.two_at_a_time) while DuckDB answers here
    on_spark = two_at_a_time(lambda sql: normalised(tuple(r) for r in spark.sql(sql).collect()), sqls)
    for (label, q), (got, refused) in zip(queries, on_spark):
        want = normalised(parity_duck.execute(layer.compile(q, dialect="duckdb")).fetchall())
        if refused is not None:  # a statement Spark refuses is a mismatch too; say which and why
            mismatches.append(f"{label}: spark refused it: {str(refused).splitlines()[0]}")
            continue
        checked += 1
        if not same_rows(want, got):
            mismatches.append(f"{label}: duckdb {want[:3]} … vs spark {got[:3]} …")
    assert not mismatches, "\n".join(mismatches)
    assert checked >= len(layer.metrics)
