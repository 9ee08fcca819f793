"""Pure domain: events, commands, aggregates (decide/evolve), policies, errors. No I/O."""
