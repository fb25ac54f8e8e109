"""Appointments of participants with the bank, their reminders, and the staff calendar."""
