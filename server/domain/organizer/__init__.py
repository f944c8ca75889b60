"""The organizer's view of an event: its summary, conflicts and their resolutions, payments that
need attention, a ticket's history, its desks and its lifecycle event deliveries. Every function
takes an event whose access the caller already proved (:mod:`server.domain.organizer.access`)."""
