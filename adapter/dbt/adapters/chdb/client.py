"""dbt-clickhouse's HTTP client wrapper, with a chDB client underneath.

``ChHttpClient`` already drives a clickhouse-connect client; clickhouse-connect's
chDB client has the same interface.  Only the construction differs, plus the
one place where the chDB client does not behave like the HTTP one (resetting
the database after a schema is dropped).
"""

import uuid

from dbt.adapters.clickhouse.httpclient import ChHttpClient
from dynamodb_cdc.connection import open_chdb_client

# Settings that ChClientWrapper puts into every session but that the chDB
# engine rejects.  chDB 4.4 (engine 26.9) accepts all of them: `session_id`
# (and the per-query `query_id`) are HTTP transport settings that
# clickhouse-connect's chDB client drops itself, and mutations_sync,
# lightweight_deletes_sync, alter_sync, insert_distributed_sync,
# insert_quorum, select_sequential_consistency and
# database_replicated_enforce_synchronous_settings are ordinary ClickHouse
# settings.  Kept as a hook should a chDB release start rejecting one.
UNSUPPORTED_SETTINGS: frozenset = frozenset()

# Every query of a client carries this setting, with a value of its own (unless
# the profile's custom_settings set it), so that cancel_running_query can find
# the client's query in system.processes.
CANCEL_TAG_SETTING = 'log_comment'

# Every ClickHouse instance has this database; see database_dropped.
_FALLBACK_DATABASE = 'default'


class ChdbClient(ChHttpClient):
    """A dbt-clickhouse client wrapper on the in-process chDB engine.

    One instance per dbt connection (dbt opens one per thread); several chDB
    clients on the same data directory share the process's single engine.
    """

    def _create_client(self, credentials):
        settings = {
            key: value
            for key, value in self._conn_settings.items()
            if key not in UNSUPPORTED_SETTINGS
        }
        self.cancel_tag = str(settings.setdefault(CANCEL_TAG_SETTING, f'dbt-chdb::{uuid.uuid4()}'))
        self._chdb_path = credentials.path
        # EngineLockedError (another process owns the directory) propagates:
        # the connection manager's retry_connection turns it into a
        # FailedToConnectError carrying its one-line message.
        return open_chdb_client(credentials.path, settings=settings)

    def cancel_running_query(self):
        """Stop this client's query in flight, if any (dbt cancels on Ctrl-C).

        dbt-clickhouse cancels by closing the client, which over HTTP drops the
        socket at once.  A chDB handle's close() instead waits for the query in
        flight to end, so dbt would hang (holding the directory) until it did.
        KILL QUERY from a second handle on the same engine ends it now.
        """
        tag = self.cancel_tag.replace('\\', '\\\\').replace("'", "\\'")
        killer = open_chdb_client(self._chdb_path)
        try:
            killer.command(f"KILL QUERY WHERE Settings['{CANCEL_TAG_SETTING}'] = '{tag}' SYNC")
        finally:
            killer.close()

    def database_dropped(self, database: str):
        # ChHttpClient sets the client database to None, which over HTTP means
        # "the server default".  A chDB handle keeps its last USE instead and
        # would stay bound to the dropped database, so rebind it explicitly.
        super().database_dropped(database)
        if self.database == database:
            self._client.database = _FALLBACK_DATABASE
