"""`python -m services.scheduler` starts the scheduler service."""

from services.scheduler.main import main

main()
