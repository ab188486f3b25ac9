"""Where the world reaches audit: GET /events and GET /orders/{id}/timeline (http.py). The
recorder's consumer is the store's projection (adapters/store.py). Wired by golive_audit.bootstrap."""
