"""Shared pieces of the cocotb testbenches: simulator runner, scoreboard, stream agents."""
