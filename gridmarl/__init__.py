"""gridmarl: multi-agent RL scheduling for smart infrastructure, measured against MILP optima."""

__version__ = "0.1.0"
