"""Figures of individual probes, one module per probe named as the probe (see `reports.probes`)."""
