"""Alerts to Kafka: key = the pair (so one pair's alerts stay ordered in one partition), value =
the alert's JSON document (ECS, or OCSF with alerting.format = "ocsf"). Sends are not awaited
here: the service awaits the acks of a whole batch before it commits the input offsets
(at-least-once)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from beaconwatch.alerting.alert import Alert
from beaconwatch.alerting.ecs import encode_alert
from beaconwatch.sinks.base import Producer


class AlertSink:
    def __init__(
        self,
        producer: Producer,
        topic: str,
        *,
        encode: Callable[[Alert], bytes] = encode_alert,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._encode = encode

    async def send(self, alerts: Sequence[Alert]) -> list[asyncio.Future[Any]]:
        """Queue the alerts; return one delivery future per alert (resolves on broker ack)."""
        futures: list[asyncio.Future[Any]] = []
        for alert in alerts:
            fut = await self._producer.send(
                self._topic, value=self._encode(alert), key=alert.pair_key
            )
            futures.append(fut)
        return futures
