"""`python -m services.notifier` starts the notifier service."""

from services.notifier.main import main

main()
