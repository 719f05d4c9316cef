"""The worker's webhook deliveries, shared fairly between apps.

The pending deliveries due are the queue (`WebhookDelivery`: pending, `next_attempt_at`
passed). The worker has `WORKER_CONCURRENCY` slots, threads that each give one app a turn: the
turn attempts that app's deliveries due, one after the other, until none is due or
`TURN_SECONDS` have passed (an attempt started is finished), then gives the slot back.

Free slots go to the apps with deliveries due, the one served the longest ago first: each gets
one turn; an app whose last turn delivered and ran out of time with deliveries left (its
receivers answer, and it has more than one turn can send) gets more, up to
`WEBHOOK_APP_CONCURRENCY` at once, and beyond that only while `WEBHOOK_APP_CONCURRENCY` slots
stay free besides, for an app that has none. So an app whose receivers stall holds one slot, one
turn at a time, and delays its own deliveries only: another app's event goes out as soon as a
slot frees, or at once from the slots kept free; and a busy app whose receivers answer has most
of the worker. An endpoint that fails rests besides
(`webhooks.services`), so a stalled receiver costs one attempt per rest, not one per event.

The loop wakes when deliveries are inserted (LISTEN on `DELIVERIES_CHANNEL`, notified at
commit), when a turn ends, and every `WORKER_POLL_SECONDS` (for retries that come due). It
survives its database going away: a failure is logged, the connections are dropped, and it tries
again after a pause that grows to `RECONNECT_MAX_SECONDS`; nothing is lost, since every
delivery waits, due, in its row.
"""

import logging
import queue
import threading
import time

import psycopg
from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone

from webhooks.models import DELIVERIES_CHANNEL, DeliveryStatus
from webhooks.selectors import webhook_apps_due
from webhooks.services import webhook_delivery_attempt_next

logger = logging.getLogger(__name__)

TURN_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 10.0


def _pause_after(pause: float) -> float:
    """The next pause before trying the database again: doubling from half a second."""
    return min(max(pause * 2, 0.5), RECONNECT_MAX_SECONDS)


class Deliveries:
    """Runs the deliveries until `stop` is set, then lets the attempts in flight finish."""

    def __init__(self, *, slots: int, per_app: int, poll_seconds: float, listen_alias: str):
        self.slots, self.per_app = slots, per_app
        self.poll_seconds, self.listen_alias = poll_seconds, listen_alias
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[int, int] = {}  # app -> its turns in progress
        self._served: dict[int, float] = {}  # app -> when its last turn started (monotonic)
        # Apps whose last turn delivered and ended with deliveries left.
        self._busy: set[int] = set()
        # Apps whose last turn found nothing it could take (due, but being attempted by another
        # worker): left alone until something new is heard of or the poll comes round, so that
        # the loop does not spin on them.
        self._idle: set[int] = set()
        self._heard = threading.Event()

    def run(self, stop: threading.Event) -> None:
        listener = threading.Thread(
            target=self._listen, args=(stop,), name="deliveries-listener", daemon=True
        )
        listener.start()
        turns: queue.Queue[int] = queue.Queue()
        slots = [
            threading.Thread(target=self._slot, args=(turns, stop), name=f"delivery-{n}")
            for n in range(self.slots)
        ]
        for slot in slots:
            slot.start()
        try:
            self._loop(turns, stop)
        finally:
            stop.set()
            for slot in slots:  # each ends after its attempt in flight
                slot.join()
            listener.join(timeout=5)
            connections.close_all()

    def _loop(self, turns: "queue.Queue[int]", stop: threading.Event) -> None:
        pause = 0.0
        while not stop.is_set():
            try:
                close_old_connections()
                self._dispatch(turns)
                pause = 0.0
            except Exception as exc:
                pause = _pause_after(pause)
                if isinstance(exc, DatabaseError):
                    logger.warning(
                        "webhook deliveries: the database is unreachable (%s); "
                        "trying again in %.1f s",
                        str(exc).strip(),
                        pause,
                    )
                else:
                    logger.exception("webhook deliveries: trying again in %.1f s", pause)
                connections.close_all()
                stop.wait(pause)
                continue
            woken = self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if not woken or self._heard.is_set():
                self._heard.clear()
                with self._lock:
                    self._idle.clear()

    def _slot(self, turns: "queue.Queue[int]", stop: threading.Event) -> None:
        """One slot: the turns it is given, one after the other, on its own database
        connection, closed when the worker stops."""
        try:
            while not stop.is_set():
                try:
                    app_id = turns.get(timeout=0.5)
                except queue.Empty:
                    continue
                self._turn(app_id, stop)
        finally:
            connections.close_all()

    def _dispatch(self, turns: "queue.Queue[int]") -> None:
        """Gives the free slots to the apps with deliveries due (see the module's docstring)."""
        with self._lock:
            if sum(self._running.values()) >= self.slots:
                return
        due = [a for a in webhook_apps_due(as_of=timezone.now()) if a not in self._idle]
        due.sort(key=lambda app_id: self._served.get(app_id, 0.0))
        assigned: list[int] = []
        with self._lock:
            free = self.slots - sum(self._running.values())
            # A turn for each app with none; then, round after round, more for the busy ones:
            # up to their share while any slot is free, past it while the reserve stays free.
            for share, reserve in ((1, 0), (self.per_app, 0), (self.slots, self.per_app)):
                given = True
                while given and free > reserve:
                    given = False
                    for app_id in due:
                        running = self._running.get(app_id, 0)
                        if free <= reserve or running >= share:
                            continue
                        if running and app_id not in self._busy:
                            continue
                        self._running[app_id] = running + 1
                        self._served[app_id] = time.monotonic()
                        assigned.append(app_id)
                        free -= 1
                        given = True
        for app_id in assigned:
            turns.put(app_id)

    def _turn(self, app_id: int, stop: threading.Event) -> None:
        busy = delivered = taken = False
        try:
            close_old_connections()
            ends = time.monotonic() + TURN_SECONDS
            while not stop.is_set():
                delivery = webhook_delivery_attempt_next(app_id=app_id)
                if delivery is None:
                    break
                taken = True
                delivered = delivered or delivery.status == DeliveryStatus.DELIVERED
                if time.monotonic() >= ends:
                    # Out of time with deliveries left: more turns at once help the app only
                    # when its receivers answer.
                    busy = delivered
                    break
        except DatabaseError as exc:
            logger.warning(
                "webhook deliveries of app %s: the database is unreachable (%s)",
                app_id,
                str(exc).strip(),
            )
            connections.close_all()
        except Exception:
            logger.exception("webhook deliveries of app %s", app_id)
            connections.close_all()
        finally:
            with self._lock:
                self._running[app_id] -= 1
                if not self._running[app_id]:
                    del self._running[app_id]
                if busy:
                    self._busy.add(app_id)
                else:
                    self._busy.discard(app_id)
                if not taken:
                    self._idle.add(app_id)
            self._wake.set()

    def _listen(self, stop: threading.Event) -> None:
        """Wakes the loop on every notification of `DELIVERIES_CHANNEL`, on a session of its
        own (LISTEN needs one: `WORKER_DATABASE_URL` behind a transaction pooler); connects
        again whenever the session is lost."""
        pause = 0.0
        while not stop.is_set():
            database = connections[self.listen_alias]
            session = None
            try:
                session = database.get_new_connection(database.get_connection_params())
                session.autocommit = True
                session.execute(f"LISTEN {DELIVERIES_CHANNEL}")
                pause = 0.0
                self._heard.set()  # anything inserted while it was not listening
                self._wake.set()
                while not stop.is_set():
                    for _ in session.notifies(timeout=1.0, stop_after=1):
                        self._heard.set()
                        self._wake.set()
            except (psycopg.Error, DatabaseError) as exc:
                pause = _pause_after(pause)
                logger.warning(
                    "webhook deliveries: listening for new ones failed (%s); "
                    "trying again in %.1f s",
                    str(exc).strip(),
                    pause,
                )
                stop.wait(pause)
            finally:
                if session is not None:
                    session.close()
