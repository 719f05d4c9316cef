"""`python -m config.embedded_postgres start|stop|url`: the embedded server, by hand.

`url` (the default) starts it if need be and prints a libpq URL for psql or DATABASE_URL."""

import sys

from config import embedded_postgres


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "url"
    if command == "stop":
        print("stopped" if embedded_postgres.stop() else "not running")
        return 0
    if command in ("start", "url"):
        address = embedded_postgres.start()
        print(
            f"postgres://{embedded_postgres.SUPERUSER}@/{embedded_postgres.DATABASE}"
            f"?host={address.socket_dir}&port={address.port}"
        )
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
