from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse

_migrated = False  # once every migration is applied, it stays so for this process


def _database_answers() -> bool:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any database failure means not ready
        return False
    return True


def healthz(request):
    """Alive, and the database answers."""
    if not _database_answers():
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def readyz(request):
    """Ready for traffic: the database answers and every migration is applied."""
    global _migrated
    if not _database_answers():
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    if not _migrated:
        connection = connections[DEFAULT_DB_ALIAS]
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            return JsonResponse(
                {"status": "unavailable", "database": "ok", "pending_migrations": len(pending)},
                status=503,
            )
        _migrated = True
    return JsonResponse({"status": "ok", "database": "ok", "migrations": "applied"})
