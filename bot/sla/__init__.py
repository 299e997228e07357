"""U1–U2, the deadline watch: the completion-deadline clock (``clock.py``, pure), the
periodic job that warns, alarms, chases and records violations once (``watch.py``),
its tables (``models.py``) and what the desk shows of it (``board.py``)."""
