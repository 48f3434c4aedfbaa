"""cascade/validators."""
