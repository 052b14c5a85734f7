"""The personal-data breach register (GDPR art. 33(5))."""
