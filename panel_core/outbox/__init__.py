"""The outbox pattern: rows written with the decision, delivered by one dispatcher."""

from panel_core.outbox.dispatcher import Claim, Outbox, OutboxKind

__all__ = ["Claim", "Outbox", "OutboxKind"]
