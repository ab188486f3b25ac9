"""The order's rules, pure: the aggregate (order.py) and the settlement of its payment
(settlement.py). Only the standard library and the contracts are imported here."""
