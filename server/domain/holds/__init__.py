"""Short checkout holds: atomic reservations across tiers and their capacity groups."""
