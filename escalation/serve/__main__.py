"""``python -m escalation.serve`` runs ``escalation serve``."""

from escalation.serve.cli import serve

serve(prog_name="escalation serve")
