"""Payment's rules, pure: the simulated provider's (rules.py) and the one decision per order
(payment.py). Only the standard library and the contracts are imported here."""
