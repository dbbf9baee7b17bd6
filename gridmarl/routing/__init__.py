"""Packet routing on real (Topology Zoo) and generated router networks; see docs/routing.md."""
