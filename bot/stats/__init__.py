"""Statistics and reports (process.md T1–T5): the figures, computed by SQL over the
store; the periodic reports the statistician reviews and the deputy managers approve;
their charts and exports. The figures are defined in ``bot/stats/FIGURES.md``."""
