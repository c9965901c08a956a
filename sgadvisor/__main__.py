"""``python -m sgadvisor``."""

from sgadvisor.cli import main

main()
