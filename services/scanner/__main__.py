"""`python -m services.scanner` starts the scanner service."""

from services.scanner.main import main

main()
