"""`python -m b12lab.rules --compile` rewrites compiled_rules.json from rules.yaml."""

from b12lab.rules.data import main

main()
