"""Packet routing on real (Topology Zoo) and generated router networks.

See docs/domains/routing.md.
"""
