"""The satisfaction survey's runtime (U3): the calls and their retries (caller), the
signed links the desk sends (links), and what the web chat opens (chat). The records
and the rules live in bot/store/surveys.py; the dialogue in nlu/ (designer-owned)."""
