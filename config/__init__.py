"""Data only: the example configuration and deployment files. This file makes them findable as package data."""
