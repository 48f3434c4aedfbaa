"""budget/backends."""
