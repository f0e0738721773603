"""`python -m bidding` runs the `bidding` command."""

from bidding.cli import main

main()
