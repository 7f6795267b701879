"""The Redis broker channel survives being closed after its connection is gone (issue 14, 2b).

Reproduces kombu 5.7's path with kombu itself: a consumed, unacknowledged message, the
connection torn down (as on a lost broker), then the channel closed, which restores the
unacknowledged messages. Stock kombu raises AttributeError there (Celery: "Unrecoverable
error", the worker exits with code 0); workers.broker.RedisTransport does not.
"""

from __future__ import annotations

import pytest
from kombu import Connection

from tests.support.services import redis_databases


def _close_after_connection_loss(url: str, transport: str) -> None:
    with Connection(url, transport=transport) as connection:
        channel = connection.channel()
        queue = connection.SimpleQueue("outage-test", channel=channel)
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        assert message.payload == {"n": 1}  # consumed, not acknowledged
        connection._do_close_transport()  # what a lost connection leaves behind
        channel.close()  # restores the unacknowledged message


def test_stock_kombu_channel_fails_as_the_issue_reports() -> None:
    with redis_databases() as (broker, _), pytest.raises(AttributeError, match="hostname"):
        _close_after_connection_loss(broker, "redis")


def test_our_channel_closes_after_connection_loss() -> None:
    with redis_databases() as (broker, _):
        _close_after_connection_loss(broker, "workers.broker:RedisTransport")
