"""Allow ``python -m gulou``."""

from gulou.cli import main

if __name__ == "__main__":
    main()
