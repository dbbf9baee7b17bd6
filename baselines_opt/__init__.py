"""Optimization baselines (Pyomo + HiGHS) for every gridmarl domain."""
