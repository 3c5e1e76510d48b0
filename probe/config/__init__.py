"""The probe's configuration: ProbeConfig and its sections, target lists, platform endpoint
files."""
