"""Where the world reaches payment: GET /payments (http.py) and the processor deciding each
order's payment (consumers.py). Wired by golive_payment.bootstrap."""
