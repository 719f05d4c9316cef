"""Django's PostgreSQL backend, checking a persistent connection without a round trip.

With `CONN_HEALTH_CHECKS`, Django asks the server (`SELECT 1`) before a request's first query
whether the connection it kept is alive, so that a connection the server dropped (a restart, a
terminated backend) is replaced before it fails a request: a round trip on every request. An
idle connection's server has nothing to say until the client asks, except when it hangs up, and
then it writes why and closes the socket (as PgBouncer does when it stops). So a socket with
nothing to read belongs to a connection as alive as after its last answer, and only one with
something to read (the goodbye, or an unexpected notice) is asked, as Django asks. A connection
lost without a word (the network cut) fails its next statement, answered as an outage (503).
"""

import select

from django.conf import settings
from django.db.backends.postgresql import base


def _has_input(fileno: int) -> bool:
    poller = select.poll()  # not select(): a descriptor past 1023 would not fit its set
    poller.register(fileno, select.POLLIN)
    return bool(poller.poll(0))


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if not _has_input(connection.fileno()):
            return True
        return super().is_usable()

    def init_connection_state(self) -> None:
        """With prepared statements (`core.rows.prepared_cursor`), the session keeps each one's
        generic plan: every statement the service prepares is written for a plan that holds
        whatever its parameters (index probes; a part a call does not need switched off by a
        parameter), and PostgreSQL, which would otherwise plan again at every call each
        statement whose parameters fold some of it away, plans it once per connection.

        Set by a statement once the session is open, not as a startup parameter, which
        PgBouncer refuses (`options`). Behind a transaction pooler a session's settings do not
        follow its transactions: there the database role carries it
        (`ALTER ROLE ... SET plan_cache_mode = force_generic_plan`, docs/operations.md)."""
        super().init_connection_state()
        if settings.DATABASE_PREPARED_STATEMENTS and settings.DATABASE_POOLER != "transaction":
            with self.connection.cursor() as cursor:
                cursor.execute("SET plan_cache_mode = force_generic_plan")
            if not self.get_autocommit():
                self.connection.commit()
