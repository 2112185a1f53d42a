from django.core.management.base import BaseCommand

from sessions_app.sandboxes.local import local_stack_stop


class Command(BaseCommand):
    help = (
        "Stop every local sandbox's bridge and the shared emulator under LOCAL_SANDBOX_ROOT. "
        "They outlive dev-server reloads on purpose; `make run` calls this when it exits."
    )

    def handle(self, *args, **options):
        local_stack_stop()
        self.stdout.write("local sandboxes and the emulator stopped")
