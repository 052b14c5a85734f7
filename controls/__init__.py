"""Data only: the bundled control catalog (YAML). This file makes it findable as package data."""
