"""The kernel defines no models. This module exists because Django sends `post_migrate` only to
apps with a models module, and the kernel creates the shared cache's table on it (`apps.py`)."""
