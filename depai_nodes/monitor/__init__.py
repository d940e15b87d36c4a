"""Monitor: shows what flows on the stack's topics, one summary line per topic."""
