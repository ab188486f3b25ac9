"""Golive's shared eventing runtime."""
