"""Recording rules: what dashboards and alerts read repeatedly, computed once per cycle.

The engine derives them from the active profile (provision/recording.py); this
file chooses which groups the build emits.
"""


def rule_groups(ctx):
    return ctx.recordings.groups()
