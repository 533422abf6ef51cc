"""Sharded rollouts on disk."""
