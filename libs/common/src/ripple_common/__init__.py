"""Shared library of the ripple services: envelope, settings, logging, telemetry, lifecycle."""
