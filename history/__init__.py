"""Scenario files shipped with bisectlab (installed as the package bisectlab.scenarios)."""
