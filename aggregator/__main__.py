"""``python -m aggregator`` runs the command line."""

from aggregator.cli import main

main()
