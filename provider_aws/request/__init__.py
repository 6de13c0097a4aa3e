"""The request layer: a Mount's attributes, secrets and permission become an immutable MountPlan.

Pure: no I/O, no logging, no environment reads. Every problem is reported at once in one ConfigError.
"""
