"""Telephony and audio for hotline: ESL, unicast media, DTMF, VAD, ASR, TTS, CallSession."""
