"""Losses, schedules, optimisers and the Lightning training modules."""
