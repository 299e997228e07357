"""Custom components of the NLU pipeline (nlu/config.yml). The Rasa server and `rasa
train` find them on PYTHONPATH (nlu/ and the repository root: bot/dialogue_model.py)."""
