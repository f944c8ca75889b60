"""Events, capacity groups and tiers: what is for sale and how much of it."""
