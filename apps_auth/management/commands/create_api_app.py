from apps_auth.models import Mode
from apps_auth.services import app_create
from core.commands import OperationsCommand


class Command(OperationsCommand):
    help = "Creates a merchant app and its first API key (shown once)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("name")
        parser.add_argument("--scopes", required=True, help="Comma-separated scopes.")
        parser.add_argument("--mode", choices=Mode.values, default=Mode.TEST)
        parser.add_argument("--rate-limit", type=int, help="Requests per minute.")
        parser.add_argument(
            "--otp-hourly-quota",
            type=int,
            help="One-time codes per hour (default: the CASHBACK_OTP_APP_HOURLY_QUOTA setting).",
        )

    def run(self, *, name, scopes, mode, rate_limit, otp_hourly_quota, **options):
        app, issued = app_create(
            name=name,
            scopes=[scope.strip() for scope in scopes.split(",") if scope.strip()],
            mode=mode,
            rate_limit_per_minute=rate_limit,
            otp_hourly_quota=otp_hourly_quota,
        )
        return {
            "app_id": app.app_id,
            "api_key": issued.raw_key,
            "scopes": app.scopes,
            "mode": app.mode,
            "rate_limit_per_minute": app.rate_limit_per_minute,
            "otp_hourly_quota": app.otp_hourly_quota,
        }
