"""Conversations between a case's participants and the bank (the chat), the FAQ search that
answers first, canned answers, and the SMS that tells an away participant of an answer."""
