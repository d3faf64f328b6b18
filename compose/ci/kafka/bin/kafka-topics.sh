#!/bin/sh
# As in the Kafka distribution: the class behind the command, every jar on the class path. A small heap:
# health checks run this beside the broker, inside its memory limit.
exec java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties -cp "/opt/kafka/libs/*" org.apache.kafka.tools.TopicCommand "$@"
