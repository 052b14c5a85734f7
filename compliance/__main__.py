"""`python -m compliance`: the same as the `compliance` command (the entry point `cli:main`)."""

from cli import main

if __name__ == "__main__":
    main()
