"""`python -m services.api` starts the api service."""

from services.api.main import main

main()
