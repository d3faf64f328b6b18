#!/bin/sh
# As in the Kafka distribution: the class behind the command, every jar on the class path.
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties -cp "/opt/kafka/libs/*" kafka.Kafka "$@"
