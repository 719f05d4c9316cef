from django.apps import AppConfig


class CardsConfig(AppConfig):
    name = "cards"

    def ready(self):
        from cards import services  # noqa: F401  connects `card_changed`
