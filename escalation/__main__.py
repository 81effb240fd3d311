"""``python -m escalation`` runs the command line."""

from escalation.cli import main

main()
