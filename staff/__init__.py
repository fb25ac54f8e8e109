"""The staff dashboard: the bank employees ' application for the same cases."""
