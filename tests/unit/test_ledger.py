"""The offset ledger without a broker: commits follow acks, revoked partitions are never
committed by their old owner, a failed commit after a rebalance is not fatal."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    CoordinatorNotAvailableError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
)

from beaconwatch.runtime.backoff import Backoff
from beaconwatch.runtime.ledger import OffsetLedger

A, B = TopicPartition("flows", 0), TopicPartition("flows", 1)


class RecordingCommitter:
    def __init__(self, fail_with: Exception | None = None) -> None:
        self.commits: list[dict[TopicPartition, int]] = []
        self.fail_with = fail_with

    async def commit(self, next_offsets: Mapping[TopicPartition, int]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        if next_offsets:
            self.commits.append(dict(next_offsets))


def acked() -> asyncio.Future[object]:
    future = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


async def test_offsets_are_committed_only_once_their_outputs_are_acknowledged() -> None:
    committer = RecordingCommitter()
    ledger = OffsetLedger(committer)
    ledger.assigned = {A, B}
    waiting: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    ledger.sent([waiting], {A: 10})
    ledger.sent([acked()], {B: 7})
    await ledger.commit_acknowledged()
    assert committer.commits == []  # B's batch is behind A's
    waiting.set_result(None)
    await ledger.commit_acknowledged(wait=True)
    assert committer.commits == [{A: 10, B: 7}]
    assert ledger.committed == {A: 10, B: 7}


async def test_a_failed_send_raises_and_commits_nothing_of_it_or_later() -> None:
    committer = RecordingCommitter()
    ledger = OffsetLedger(committer)
    ledger.assigned = {A}
    failed: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    failed.set_exception(KafkaConnectionError("gone"))
    ledger.sent([failed], {A: 10})
    ledger.sent([acked()], {A: 20})
    with pytest.raises(KafkaConnectionError):
        await ledger.commit_acknowledged(wait=True)
    assert committer.commits == []


async def test_revoked_partitions_commit_what_was_processed_and_are_not_committed_after() -> None:
    committer = RecordingCommitter()
    alerts: list[object] = []
    ledger = OffsetLedger(committer, alert_listener=alerts.extend)
    ledger.assigned = {A, B}
    ledger.sent([acked()], {A: 5, B: 3})
    await ledger.commit_revoked([A])
    assert committer.commits == [{A: 5}]
    ledger.assigned.discard(A)
    ledger.forget([A])
    ledger.sent([acked()], {A: 9, B: 4})  # a batch that raced with the revoke
    await ledger.commit_acknowledged(wait=True)
    assert committer.commits[-1] == {B: 4}
    assert A not in ledger.committed


async def test_a_commit_failed_by_a_rebalance_is_not_fatal() -> None:
    ledger = OffsetLedger(RecordingCommitter(fail_with=CommitFailedError("rebalanced")))
    ledger.assigned = {A}
    ledger.sent([acked()], {A: 5})
    await ledger.commit_acknowledged(wait=True)  # logged, not raised
    assert ledger.committed == {}
    assert ledger.processed == {A: 5}


async def test_a_commit_failed_in_an_outage_is_retried_with_backoff_and_never_lost() -> None:
    now = [0.0]
    committer = RecordingCommitter(fail_with=CoordinatorNotAvailableError())
    ledger = OffsetLedger(committer, retry_backoff=Backoff(1.0, 8.0), clock=lambda: now[0])
    ledger.assigned = {A, B}
    ledger.sent([acked()], {A: 5})
    await ledger.commit_acknowledged(wait=True)  # fails: kept, not raised
    assert ledger.committed == {} and ledger.idle_work is False  # backing off
    now[0] = 20.0  # past any backoff (at most 8 s)
    assert ledger.idle_work
    committer.fail_with = None
    ledger.sent([acked()], {B: 3})
    await ledger.commit_acknowledged(wait=True)
    assert committer.commits == [{A: 5, B: 3}]  # the failed commit went with the next one
    assert ledger.committed == {A: 5, B: 3} and not ledger.idle_work


async def test_a_commit_error_no_retry_can_fix_is_raised() -> None:
    ledger = OffsetLedger(RecordingCommitter(fail_with=GroupAuthorizationFailedError()))
    ledger.assigned = {A}
    ledger.sent([acked()], {A: 5})
    with pytest.raises(GroupAuthorizationFailedError):
        await ledger.commit_acknowledged(wait=True)
