#!/usr/bin/env bash
# Prints a working Python 3.10 interpreter (Rasa 3.6 needs it), or explains what to install.
for candidate in python3.10 "$(pyenv root 2>/dev/null)"/versions/3.10*/bin/python3.10 \
                 /usr/local/bin/python3.10 /usr/bin/python3.10; do
  if [ -n "$candidate" ] && "$candidate" -c 'import sys, venv; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
    echo "$candidate"
    exit 0
  fi
done
cat >&2 <<'MSG'
error: Python 3.10 was not found, and Rasa 3.6 (the dialogue engine) needs it.
Install it, then run make again, e.g.:
  pyenv install 3.10        (with pyenv), or
  apt-get install python3.10 python3.10-venv   (where your distribution has it), or
  uv python install 3.10
MSG
exit 1
