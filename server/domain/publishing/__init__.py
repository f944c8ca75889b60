"""Public records: the catalog of a ticketed event written as Lexicon records into its organizer's
repository, and kept in step with the catalog."""
