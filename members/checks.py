"""Deployment checks of member authentication (`manage.py check --deploy`)."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def console_backends_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A console backend writes every one-time code to the server's output, i.e. its log. The
    settings refuse one with DEBUG off unless CASHBACK_ALLOW_CONSOLE_BACKENDS allows it; this
    names it wherever it is in use. A console backend is one named in `CONSOLE_BACKENDS`, the
    settings' own list, so that both know the same ones."""
    return [
        checks.Warning(
            f"{setting} is a console backend ({console}): one-time codes are written to the "
            "server's output.",
            hint=f"Set {setting} to a backend that delivers them.",
            id="members.W001",
        )
        for setting, console in settings.CONSOLE_BACKENDS.items()
        if getattr(settings, setting) == console
    ]
