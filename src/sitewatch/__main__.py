"""``python -m sitewatch`` runs the CLI."""

from .cli import main

main()
