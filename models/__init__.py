"""models: the NumPy model zoo (imports only NumPy and the standard library)."""
