"""The domain layer: pure values and rules, no database and no heavy imports."""
