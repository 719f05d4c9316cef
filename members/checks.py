"""Deployment checks of member authentication (`manage.py check --deploy`)."""

from django.conf import settings
from django.core import checks
from django.core.mail.backends.console import EmailBackend as ConsoleEmailBackend
from django.utils.module_loading import import_string

from members.sms import ConsoleSmsBackend

CONSOLE_BACKENDS = {
    "EMAIL_BACKEND": ConsoleEmailBackend,
    "CASHBACK_SMS_BACKEND": ConsoleSmsBackend,
}


@checks.register(checks.Tags.security, deploy=True)
def console_backends_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A console backend writes every one-time code to the server's output, i.e. its log. The
    settings refuse one with DEBUG off unless CASHBACK_ALLOW_CONSOLE_BACKENDS allows it; this
    names it wherever it is in use."""
    warnings: list[checks.CheckMessage] = []
    for setting, console in CONSOLE_BACKENDS.items():
        name = getattr(settings, setting)
        try:
            backend = import_string(name)
        except ImportError:
            continue  # sending fails loudly; not this check's concern
        if isinstance(backend, type) and issubclass(backend, console):
            warnings.append(
                checks.Warning(
                    f"{setting} is a console backend ({name}): one-time codes are written to "
                    "the server's output.",
                    hint=f"Set {setting} to a backend that delivers them.",
                    id="members.W001",
                )
            )
    return warnings
