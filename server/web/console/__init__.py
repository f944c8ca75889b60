"""The organizer's web console: server-rendered pages over the organizer's view of an event
(:mod:`server.domain.organizer`), signed in with a one-time link."""
