"""Tickets: issuance from completed holds, status history, check-in list keys and signed passes."""
