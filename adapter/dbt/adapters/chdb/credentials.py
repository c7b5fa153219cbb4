"""Profile credentials for ``type: chdb``: dbt-clickhouse's, plus the data directory."""

import os
from dataclasses import dataclass, field
from urllib.parse import unquote

from dbt.adapters.clickhouse.credentials import ClickHouseCredentials
from dbt_common.exceptions import DbtRuntimeError

# dbt-clickhouse options that only describe how to reach a server over the
# network.  The chDB client ignores them, so `dbt debug` does not show them.
_NETWORK_ONLY_KEYS = frozenset(
    {
        'driver',
        'host',
        'port',
        'user',
        'secure',
        'verify',
        'client_cert',
        'client_cert_key',
        'connect_timeout',
        'send_receive_timeout',
        'sync_request_timeout',
        'compress_block_size',
        'compression',
        'tcp_keepalive',
        'server_host_name',
    }
)


@dataclass
class ChdbCredentials(ClickHouseCredentials):
    """ClickHouse credentials whose target is a chDB data directory.

    ``path`` is required (keyword-only because every inherited field has a
    default).  A relative path is resolved against the directory dbt is run
    from, once, when the profile is loaded.  ``path`` may also be the loader's
    ``chdb://`` URL (``chdb:///abs/dir``, ``chdb://rel/dir``), so that one
    variable names the directory for both.  ``schema`` is the default
    database, exactly as in dbt-clickhouse.
    """

    path: str = field(kw_only=True)

    @property
    def type(self):
        return 'chdb'

    @property
    def unique_field(self):
        return self.path

    def __post_init__(self):
        super().__post_init__()
        if not self.path or not str(self.path).strip():
            raise DbtRuntimeError(
                'The chdb profile needs `path`: the chDB data directory, e.g. `path: .chdb`'
            )
        path = str(self.path).strip()
        scheme = path.split('://', 1)[0].lower() if '://' in path else ''
        if scheme in ('http', 'https'):
            raise DbtRuntimeError(
                'The chdb profile\'s `path` is a chDB data directory, not a server URL (it reads the loader\'s '
                'DYNAMODB_CDC_CLICKHOUSE_URL when that is a chdb:// URL): for a ClickHouse server use a '
                '`type: clickhouse` output, as `server` in profiles.example.yml'
            )
        if scheme == 'chdb':  # the loader's URL form: chdb:///abs/dir or chdb://rel/dir
            rest = path.split('://', 1)[1]
            if '?' in rest or '#' in rest:
                raise DbtRuntimeError(
                    f'`path` {self.path}: a chdb:// URL has no ?query or #fragment (write them as %3F, %23)'
                )
            path = unquote(rest)
            if not path or path in ('memory', ':memory:'):  # as the loader's parse_url refuses them
                raise DbtRuntimeError(
                    f'`path` {self.path}: chdb:// needs a data directory, e.g. chdb:///var/lib/dynamodb-cdc '
                    'or chdb://.chdb'
                )
        elif path == ':memory:':  # (else a directory named ':memory:' would be made where dbt runs)
            raise DbtRuntimeError(
                '`path` :memory:: the chdb profile needs a data directory, the one the loader writes to (an '
                'engine in memory holds none of its tables), e.g. `path: .chdb`'
            )
        path = os.path.expanduser(path)
        if not os.path.isabs(path):
            path = os.path.join(os.getcwd(), path)
        self.path = os.path.normpath(path)

    def _connection_keys(self):
        return ('path',) + tuple(
            key for key in super()._connection_keys() if key not in _NETWORK_ONLY_KEYS
        )
