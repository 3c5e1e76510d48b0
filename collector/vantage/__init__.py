"""The collector's own vantage: the control measurement and the SNI A/B endpoint."""
