"""`python -m services.standalone` runs every service in one process (no servers needed)."""

import sys

from services.standalone.main import run_standalone
from shared.settings import get_settings

sys.exit(run_standalone(get_settings(), reason="asked for with `python -m services.standalone`"))
