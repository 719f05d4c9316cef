"""The reference's WSGI application, set up as the service's (config/wsgi.py): psycopg's C loader
for `timestamptz` on each connection (core.connections) and the loaded objects frozen out of the
collector's passes."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.db.backends.signals import connection_created

from core.connections import timestamptz_loader_install

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.reference.settings")
application = get_wsgi_application()
connection_created.connect(timestamptz_loader_install, dispatch_uid="core.timestamptz")
gc.freeze()
