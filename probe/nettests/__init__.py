"""The kinds of test: one package per test (measure, analysis, run), and the round runner."""
