"""The project's PostgreSQL backend (`core.postgresql`), connecting to the embedded server
(started on first use)."""

from config import embedded_postgres
from core.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        address = embedded_postgres.start()
        params.update(host=address.socket_dir, port=address.port, user=embedded_postgres.SUPERUSER)
        return params
