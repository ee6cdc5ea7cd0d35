"""Developer tooling: benchmarks, load generators, local service runners and catalog upkeep.

Product components never import this package (an import-linter contract, docs/architecture.md);
the CLI, the demo and the benchmarks may.
"""
