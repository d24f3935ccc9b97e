"""The simulated CAR T trial: demo data and the truth tests compare against."""

from ckpk.simulate.writer import SimulationSettings, simulate_trial

__all__ = ["SimulationSettings", "simulate_trial"]
