"""Text messages: an outbox in the database, templates, providers and the dispatcher."""
