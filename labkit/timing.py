"""The numbers every part of the lab must agree on, defined once: the window length, the watermark delay and the
source's idle timeout.

The job (labkit.jobs.sql), the generator and ledger (what counts as which window), verify (when a window is
final), the end markers, the dashboards and the notebooks all read them from here.
"""

WINDOW_S = 10  # tumbling event-time windows
WINDOW_MS = WINDOW_S * 1000
WATERMARK_DELAY_S = 5  # the watermark trails the newest event time by this much
WATERMARK_DELAY_MS = WATERMARK_DELAY_S * 1000
# A partition silent this long is left out of the watermark's minimum (the source's
# 'scan.watermark.idle-timeout'). It should outlast a broker restart: while Kafka is down every partition is
# silent, and once all are idle, the first partitions read again move the watermark without the rest, whose
# backlog (the outage's events) then lands behind it and is counted late. With 30 s, a docker-mode CI run's
# Kafka restart drill (stop, 2 s, start, ready) took 29 s on two busy cores, plus the clients' reconnect back-off,
# and the job counted 5,099 on-time events late; with 60 s, a local drill beside a docker-mode one took 54 s
# (Kafka 41 s to start) and 570 were late. Holding Kafka down for longer than the timeout reproduces it
# (tests/pipeline/test_faults.py). The price: traffic that leaves a partition silent (one key, no end markers)
# waits this long for its windows; the lab's own producer writes every partition and ends runs with end markers,
# so its windows never wait for it.
IDLE_TIMEOUT_S = 120
