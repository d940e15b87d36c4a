"""DAO listener: publishes the fleet policy the robots obey (from a file, or from the chain)."""
