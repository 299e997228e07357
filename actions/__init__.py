"""The Rasa action server (rasa_sdk 3.6, Python 3.10): thin actions over bot/ services."""
