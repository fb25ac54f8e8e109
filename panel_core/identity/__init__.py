"""Who is acting: a participant's sign-in to a case (PESEL fragment and SMS code), and the
actors, participant or member of staff, that every use case takes."""
