"""Helpers of the course."""
