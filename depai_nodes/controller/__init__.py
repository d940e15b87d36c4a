"""Regulated pure pursuit path following, governed by fleet policy (pause, speed limits)."""
