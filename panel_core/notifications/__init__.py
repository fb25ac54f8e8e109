"""Telling people: invitations and decisions by SMS through the SMS outbox, and live updates
to the pages they have open."""
