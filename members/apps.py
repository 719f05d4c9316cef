from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "members"

    def ready(self) -> None:
        from members import checks  # noqa: F401  (registers the deployment checks)
