"""The two numbers every part of the lab must agree on, defined once: the window length and the watermark delay.

The job (labkit.jobs.sql), the generator and ledger (what counts as which window), verify (when a window is
final), the end markers, the dashboards and the notebooks all read them from here.
"""

WINDOW_S = 10  # tumbling event-time windows
WINDOW_MS = WINDOW_S * 1000
WATERMARK_DELAY_S = 5  # the watermark trails the newest event time by this much
WATERMARK_DELAY_MS = WATERMARK_DELAY_S * 1000
