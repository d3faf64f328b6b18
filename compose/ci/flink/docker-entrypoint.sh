#!/bin/sh
# As the flink image's entrypoint does: `jobmanager` or `taskmanager` start in the foreground as user flink,
# with the settings a container needs (bind all interfaces, this container's address), then FLINK_PROPERTIES
# (one `key: value` per line; a later value of a key wins). Anything else is run as a command.
set -eu
case "${1:-}" in
  jobmanager | taskmanager)
    role=$1; shift
    conf=$FLINK_HOME/conf/config.yaml
    {
      echo "env.java.opts.all: $(cat "$FLINK_HOME/conf/java-opts")"
      echo "jobmanager.rpc.address: ${JOB_MANAGER_RPC_ADDRESS:-jobmanager}"
      echo "jobmanager.rpc.port: 6123"
      echo "jobmanager.bind-host: 0.0.0.0"
      echo "jobmanager.memory.process.size: 1600m"
      echo "taskmanager.bind-host: 0.0.0.0"
      echo "taskmanager.host: $(hostname -i | cut -d' ' -f1)"
      echo "taskmanager.memory.process.size: 1728m"
      echo "taskmanager.numberOfTaskSlots: 1"
      echo "rest.address: ${JOB_MANAGER_RPC_ADDRESS:-jobmanager}"
      echo "rest.bind-address: 0.0.0.0"
      echo "blob.server.port: 6124"
      echo "query.server.port: 6125"
      printf '%s\n' "${FLINK_PROPERTIES:-}"
    } | awk '{ k = $0; sub(/:.*/, "", k) } NF && k !~ /^ *#/ { if (!(k in v)) o[++n] = k; v[k] = $0 }
             END { for (i = 1; i <= n; i++) print v[o[i]] }' > "$conf"
    chown flink:flink "$conf"
    exec setpriv --reuid=flink --regid=flink --init-groups "$FLINK_HOME/bin/$role.sh" start-foreground "$@"
    ;;
  help) echo "usage: jobmanager | taskmanager | COMMAND"; exit 0 ;;
  *) exec "$@" ;;
esac
