"""Quality inspection (process.md Q1–Q8): the daily sample of every post's work and the
inspectors' spot checks (:mod:`bot.quality.sampler`), scorecards and scores with their
history, violations and who may see them (:mod:`bot.quality.scoring`), hand-offs
between posts flagged automatically (:mod:`bot.quality.handoffs`), and the weekly QA
analysis report (:mod:`bot.quality.weekly`, on the statistics' report machinery)."""
