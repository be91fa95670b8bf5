"""A Flower app measured by greentrack (see README.md next to pyproject.toml)."""
