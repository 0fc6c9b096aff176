"""Maintainer tools (not installed with the package): run from the repository root, e.g.
`python -m tools.reproduce`, `python -m tools.bundle`, `python -m tools.compact_weights`."""
