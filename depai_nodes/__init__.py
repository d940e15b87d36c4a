"""DePAI nodes."""
