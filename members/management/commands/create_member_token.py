from django.core.management.base import CommandError

from apps_auth.commands import AppCommand
from members.selectors import member_get
from members.tokens import member_token_issue


class Command(AppCommand):
    help = "Issues a member token (X-Member-Token) for a member of an app."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--member", required=True, type=int, help="The member id.")
        parser.add_argument("--ttl", type=int, help="Lifetime in seconds.")

    def run(self, *, app, member, ttl, **options):
        if ttl is not None and ttl <= 0:
            raise CommandError("--ttl must be a positive number of seconds.")
        found = member_get(app=app, member_id=member)
        token = member_token_issue(app=app, member_id=found.pk, ttl_seconds=ttl)
        return {"member_token": token.token, "expires_at": token.expires_at.isoformat()}
