"""``python -m escalation`` runs the command line."""

from escalation.cli import main

if __name__ == "__main__":  # not when a worker process (spawn, forkserver) imports it
    main()
