"""Where the world reaches the order service: HTTP routes (http.py) and the process manager's
consumer (consumers.py). Wired by golive_order.bootstrap."""
