"""The world file: exchanges, subscriber lines, faults and works the bot knows about."""
