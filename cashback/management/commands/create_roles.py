from cashback.roles import ROLES, roles_ensure
from core.commands import OperationsCommand


class Command(OperationsCommand):
    help = "Creates the Support and Finance groups with their permissions (migrate does it too)."

    def run(self, **options):
        roles_ensure()
        return {"groups": sorted(ROLES)}
