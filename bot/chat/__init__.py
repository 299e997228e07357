"""Channels meet the dialogue here: the Rasa client, the prompt catalogue, the chat API."""
