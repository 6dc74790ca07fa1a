"""Learning curves, power-law fits, statistics, figures and reports."""
