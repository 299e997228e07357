"""hotline: a voice and web-chat bot for a telecom fault-reporting service (障碍申告)."""

__version__ = "0.1.0"
