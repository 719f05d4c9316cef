"""Django's PostgreSQL backend, connecting to the embedded server (started on first use)."""

from django.db.backends.postgresql import base

from config import embedded_postgres


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        address = embedded_postgres.start()
        params.update(host=address.socket_dir, port=address.port, user=embedded_postgres.SUPERUSER)
        return params
