"""What happened: the audit log of every action, and the participants' activity feed, which
shows only what a participant may know."""
