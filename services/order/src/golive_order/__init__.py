"""Golive's order service."""
