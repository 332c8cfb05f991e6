"""``python -m dockyard`` runs the command-line tool."""

from dockyard.cli.main import main

if __name__ == "__main__":
    main()
