"""Pure statistics over documented shapes (numpy, scipy)."""
