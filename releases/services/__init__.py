"""Writes of the releases app: proposals, gates, approval, activation and rollback, canary/shadow, monitoring."""
