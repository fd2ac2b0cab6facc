"""`python -m services.generator` starts the generator service."""

from services.generator.main import main

main()
