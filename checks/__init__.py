"""Built-in check plugins, one module each, registered through the `compliance.checks` entry points."""
