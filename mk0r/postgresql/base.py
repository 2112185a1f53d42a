"""Django's PostgreSQL backend, with a health check that costs no round trip when it need not.

With CONN_HEALTH_CHECKS, Django sends `SELECT 1` before the first query of every request
that reuses a connection: on the quote and switch paths, one round trip in five. A server that
closes a connection (a restart, pg_terminate_backend, its idle timeout) says so on the socket,
which then reads as ready while the connection is idle; only then, or when the connection is
not plainly idle, is the `SELECT 1` sent. A connection cut silently by the network is found by
the request's first query failing, as it would be without health checks.
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and self.pool is None
            and _quiet_and_idle(self.connection)
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()


def _quiet_and_idle(connection) -> bool:
    """Open, outside any transaction, and nothing to read: the server has not hung up."""
    if connection.closed or connection.info.transaction_status != pq.TransactionStatus.IDLE:
        return False
    readable, _, _ = select.select([connection.fileno()], [], [], 0)
    return not readable
