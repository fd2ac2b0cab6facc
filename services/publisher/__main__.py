"""`python -m services.publisher` starts the publisher service."""

from services.publisher.main import main

main()
