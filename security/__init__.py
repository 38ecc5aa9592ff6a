"""Security tooling of the study server: fuzzing, attack corpus, canary detector, disclosure campaign.

Run the scripts from the repository root (``python security/fuzz.py --n 100000 --seed 1``); the
figures they print are recorded in SECURITY.md.
"""
