"""Golive's payment service."""
