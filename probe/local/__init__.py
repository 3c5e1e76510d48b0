"""What the probe keeps on the volunteer's machine: the local database, spool, journal, privacy and
logs."""
