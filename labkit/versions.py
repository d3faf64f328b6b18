"""Every version that must fit together, in one place.

PyFlink, the Kafka connector, the Kafka broker, InfluxDB and the compose images are pinned here;
pyproject.toml, environment.yml and compose/ are checked against these by tests.
"""

FLINK = "2.2.0"  # apache-flink on PyPI; the cluster runs from its bundled distribution
FLINK_KAFKA_CONNECTOR = "5.0.0-2.2"  # org.apache.flink:flink-sql-connector-kafka
KAFKA = "4.1.2"  # org.apache.kafka:kafka_2.13 (KRaft)
SLF4J = "2.0.17"
LOG4J = "2.24.3"
INFLUXDB = "2.7.12"  # influxd, built from the Go module proxy
FLUX = "0.196.1"  # github.com/influxdata/flux matching INFLUXDB
JAVA_MAJOR = 17

IMAGES = {
    "kafka": f"apache/kafka:{KAFKA}",
    "flink": f"flink:{FLINK}-java17",
    "influxdb": f"influxdb:{INFLUXDB}",
    "grafana": "grafana/grafana-oss:12.2.1",  # runs only in compose (AGPL; not provisioned locally)
}
# Grafana's dashboards-as-code library (Apache-2.0), the build for Grafana 11.6's dashboard schema, which
# Grafana 12 reads (it migrates older schema versions on load).
GRAFANA_FOUNDATION_SDK = "1769699379!11.6.0"
