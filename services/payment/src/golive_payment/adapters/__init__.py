"""Payment's database: the payments read model."""
