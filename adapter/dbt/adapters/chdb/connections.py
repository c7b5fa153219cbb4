from dbt.adapters.chdb.client import ChdbClient
from dbt.adapters.clickhouse.connections import (
    ClickHouseConnectionManager,
    retryable_exceptions,
)
from dbt.adapters.clickhouse.logger import logger


class ChdbConnectionManager(ClickHouseConnectionManager):
    """dbt-clickhouse's connection manager, opening chDB clients."""

    TYPE = 'chdb'

    @classmethod
    def open(cls, connection):
        if connection.state == 'open':
            logger.debug('Connection is already open, skipping open.')
            return connection
        credentials = cls.get_credentials(connection.credentials)

        def connect():
            return ChdbClient(credentials)

        # Any non-retryable exception from connect(), EngineLockedError
        # included, becomes FailedToConnectError(str(exception)): dbt prints
        # the one-line message without a traceback.
        return cls.retry_connection(
            connection,
            connect=connect,
            logger=logger,
            retry_limit=credentials.retries,
            retryable_exceptions=retryable_exceptions,
        )

    def cancel(self, connection):
        # dbt-clickhouse's cancel only closes the client; on chDB that waits for
        # the query in flight to finish (see ChdbClient.cancel_running_query).
        handle = connection.handle
        if isinstance(handle, ChdbClient):
            try:
                handle.cancel_running_query()
            except Exception as ex:  # cancelling is best effort; close() still runs
                logger.debug(f'Could not kill the query of {connection.name}: {ex}')
        super().cancel(connection)
