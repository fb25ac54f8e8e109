"""Documents participants upload: checked by content, scanned, stored under generated names."""
