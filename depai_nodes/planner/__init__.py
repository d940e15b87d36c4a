"""Global path planning on occupancy grids, governed by fleet policy (keep-out zones)."""
