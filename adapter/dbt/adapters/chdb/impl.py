from dbt.adapters.chdb.connections import ChdbConnectionManager
from dbt.adapters.clickhouse.impl import ClickHouseAdapter


class ChdbAdapter(ClickHouseAdapter):
    """The dbt-clickhouse adapter on chDB; only the connection manager differs."""

    ConnectionManager = ChdbConnectionManager
