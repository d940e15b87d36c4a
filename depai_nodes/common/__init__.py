"""Conventions every DePAI node shares: validated parameters, QoS profiles, process runner."""
