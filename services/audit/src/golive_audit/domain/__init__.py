"""What the black-box recorder keeps of a record (recording.py), pure: only the standard library
and the contracts are imported here."""
