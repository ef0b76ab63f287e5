"""Shared building blocks (not registered): conv blocks, inference-time fusion."""
