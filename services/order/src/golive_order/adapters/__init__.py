"""The order service's databases: the orders read model and the Idempotency-Key store."""
