"""Django's PostgreSQL backend with a cheaper check of a persistent connection (`base.py`):
the engine `config.settings` gives every database."""
