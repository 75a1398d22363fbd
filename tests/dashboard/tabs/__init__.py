"""Tests of the dashboard's tabs."""
