"""The probe's daemon: the loop, its timetable, clock, budgets, uploads and local metrics."""
