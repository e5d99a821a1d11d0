"""Lattice: a cluster-in-a-box with a Diego-style scheduler, router and log aggregator."""

__version__ = "0.1.0"
