"""The Redis broker transport, made to ride out a broker outage.

kombu 5.7's Redis channel, closed after its connection lost the server, restores its
unacknowledged messages through a new client built from ``connection.client``, which the
closed connection has already set to ``None``: ``restore_unacked`` raises
``AttributeError("'NoneType' object has no attribute 'hostname'")``, Celery calls that an
unrecoverable error and the worker exits (with code 0). Here the restore is skipped with a
warning instead: the messages stay in Redis's unacked index, from which kombu redelivers them
after the visibility timeout if the server kept them, and in any case the audit's state lives
in the database, where the sweep and the call leases re-dispatch whatever a lost message held.

Used by naming `RedisTransport` as Celery's ``broker_transport`` (workers/app.py).
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis

__all__ = ["RedisTransport"]

log = logging.getLogger(__name__)


class _QoS(kombu_redis.QoS):  # type: ignore[misc]
    def restore_unacked(self, client: Any = None) -> Any:
        try:
            return super().restore_unacked(client)
        except AttributeError as error:  # the connection is gone (see the module docstring)
            log.warning(
                "broker connection lost before %d unacknowledged message(s) could be "
                "restored (%s); they are redelivered after the visibility timeout or "
                "re-dispatched by the sweep",
                len(self._delivered),
                error,
            )
            self._delivered.clear()
            return None


class _Channel(kombu_redis.Channel):  # type: ignore[misc]
    QoS = _QoS


class RedisTransport(kombu_redis.Transport):  # type: ignore[misc]
    """kombu's Redis transport whose channels survive closing after a lost connection."""

    Channel = _Channel
