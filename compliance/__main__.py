"""`python -m compliance`: the same as the `compliance` command (the entry point `compliance.cli:main`)."""

from compliance.cli import main

if __name__ == "__main__":
    main()
