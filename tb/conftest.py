"""Shared pytest setup of the testbenches (fineq_tb is importable through pytest's ``pythonpath = ["tb"]``)."""
