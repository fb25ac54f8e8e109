"""Tasks: the participants' and the staff's task lists; opening, judging and sending a task;
drafts, consents and signatures."""
