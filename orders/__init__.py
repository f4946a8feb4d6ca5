"""Orders, inventory, payments, e-mail and catalog imports."""
