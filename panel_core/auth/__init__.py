"""Participant access: PESEL fragments, one-time codes, limits and the login to a case."""
