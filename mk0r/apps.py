from django.apps import AppConfig


class Mk0rConfig(AppConfig):
    """The project's own code that Django must load at start: its system checks."""

    name = "mk0r"
    verbose_name = "mk0r"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers them)
