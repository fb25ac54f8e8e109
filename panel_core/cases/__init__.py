"""Cases: opening them, their statuses and decisions, the case-type descriptors, the
participants' overview, and the staff's case view and search."""
