"""``python -m escalation.cli`` runs the command line."""

from escalation.cli import main

main()
