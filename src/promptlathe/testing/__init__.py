"""Conformance suites shipped with the package (``promptlathe.testing.optimizers``), so
plug-in authors run the tests promptlathe runs on its own implementations."""
