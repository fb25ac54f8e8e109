"""Live updates: "something changed in case X", published through Redis pub/sub.

Messages name the case and the kind of change only; pages fetch what they show through the
usual, authorised routes, so nothing personal travels on the channel.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

TASKS_CHANGED: Final = "tasks-changed"
STATUS_CHANGED: Final = "status-changed"
ACTIVITY: Final = "activity"
DOCUMENTS_CHANGED: Final = "documents-changed"


# The staff dashboard's inboxes: "some staff task changed". Each inbox then reads what its
# member of staff may see; the message itself names no task.
STAFF_CHANNEL: Final = "panel:staff:tasks"


# The chat: a conversation's own channel (its page), its participant's (their Messages area
# and badges: never the case's, which every participant of the case reads), and the staff
# queue's.
MESSAGE: Final = "message"
CONVERSATIONS_CHANGED: Final = "conversations-changed"
STAFF_CONVERSATIONS_CHANNEL: Final = "panel:staff:conversations"


def conversation_channel(conversation_id: uuid.UUID | str) -> str:
    return f"panel:conversation:{conversation_id}"


def participant_channel(participant_id: uuid.UUID | str) -> str:
    return f"panel:participant:{participant_id}"


async def publish_conversation_update(
    redis: Redis,
    conversation_id: uuid.UUID,
    participant_id: uuid.UUID,
    case_id: uuid.UUID,
) -> None:
    """Best effort, like ``publish_case_update``: to the conversation's page, its
    participant's pages, and the staff (their queue, and the case page's context)."""
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.publish(conversation_channel(conversation_id), json.dumps({"kind": MESSAGE}))
            pipe.publish(participant_channel(participant_id), json.dumps({"kind": MESSAGE}))
            pipe.publish(STAFF_CONVERSATIONS_CHANNEL, json.dumps({"kind": CONVERSATIONS_CHANGED}))
            await pipe.execute()
    except RedisError as exc:
        log.warning("live update of conversation %s not published: %s", conversation_id, exc)


def case_channel(case_id: uuid.UUID | str) -> str:
    return f"panel:case:{case_id}"


async def publish_case_update(redis: Redis, case_id: uuid.UUID | str, kind: str) -> None:
    """Best effort: a lost update only means a page refreshes later, so it never fails the
    action that caused it."""
    try:
        await redis.publish(case_channel(case_id), json.dumps({"kind": kind}))
    except RedisError as exc:
        log.warning("live update for case %s not published: %s", case_id, exc)


async def publish_staff_update(redis: Redis, kind: str) -> None:
    """Best effort, like ``publish_case_update``."""
    try:
        await redis.publish(STAFF_CHANNEL, json.dumps({"kind": kind}))
    except RedisError as exc:
        log.warning("live update for the staff inboxes not published: %s", exc)
