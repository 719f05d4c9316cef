"""`make run`: the API (gunicorn), the background worker and a local webhook receiver, started
together and stopped together. Ctrl-C or SIGTERM stops all three (each gets SIGTERM once and
finishes what it is doing); one that exits on its own stops the others.

    HOST=127.0.0.1 PORT=8000 HOOK_PORT=8001 python -m config.serve
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 20  # seconds; the worker lets a delivery in flight finish


def main() -> int:
    python = sys.executable
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
    hook_port = os.environ.get("HOOK_PORT", "8001")
    gunicorn = str(Path(python).parent / "gunicorn")
    commands = {
        "receiver": [python, "manage.py", "receive_webhooks", "--port", hook_port],
        "worker": [python, "manage.py", "worker"],
        "web": [gunicorn, "-c", "gunicorn.conf.py", "config.wsgi"],
    }
    print(
        f"Webhook deliveries: the receiver on http://127.0.0.1:{hook_port}/ prints each one "
        "below (webhook-id, type, whether its signature verifies); the back office lists them "
        f"at http://{host}:{port}/admin/webhooks/webhookdelivery/",
        flush=True,
    )
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # Each in its own session: a Ctrl-C reaches this process only, which stops them in order.
    processes = {
        name: subprocess.Popen(command, cwd=ROOT, start_new_session=True)  # noqa: S603
        for name, command in commands.items()
    }
    while not stopping and all(p.poll() is None for p in processes.values()):
        time.sleep(0.2)
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes.values():
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    exited = [name for name, p in processes.items() if p.returncode not in (0, -signal.SIGTERM)]
    return 1 if exited and not stopping else 0


if __name__ == "__main__":
    sys.exit(main())
