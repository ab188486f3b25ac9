"""The audit store: every recorded record, and the queries behind the API."""
