import java.io.FileReader;
import java.io.Reader;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import kafka.server.KafkaConfig;

import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.errors.PolicyViolationException;
import org.apache.kafka.server.policy.CreateTopicPolicy;
import org.apache.kafka.server.policy.CreateTopicPolicy.RequestMetadata;

/**
 * Drives the CreateTopicPolicy a server.properties names as Kafka's controller does, without a broker
 * (tests/unit/test_partition_cap.py).
 *
 * <p>{@code java PolicyHarness <server.properties> <topic>=<n> <topic>=@<n> ...}: parses the file with Kafka's own
 * KafkaConfig and gets the policy from it the way ControllerServer does ({@code getConfiguredInstance}, which
 * passes every property to {@code configure}), then asks it about each topic: {@code =n} a count, as CreateTopics
 * without assignments sends it; {@code =@n} n explicit replica assignments and no count. Prints one line per
 * topic, "topic allowed" or "topic refused: message"; "config refused: message" if the policy rejects its
 * configuration (the broker would not start).
 */
public final class PolicyHarness {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (Reader in = new FileReader(args[0])) {
            props.load(in);
        }
        CreateTopicPolicy policy;
        try {
            policy = KafkaConfig.fromProps(props)
                    .getConfiguredInstance("create.topic.policy.class.name", CreateTopicPolicy.class);
        } catch (ConfigException e) {
            System.out.println("config refused: " + e.getMessage());
            return;
        }
        for (int i = 1; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            RequestMetadata request;
            if (kv[1].startsWith("@")) {
                int n = Integer.parseInt(kv[1].substring(1));
                Map<Integer, List<Integer>> assignments = new HashMap<>();
                for (int p = 0; p < n; p++) {
                    assignments.put(p, new ArrayList<>(List.of(1)));
                }
                request = new RequestMetadata(kv[0], null, null, assignments, Map.of());
            } else {
                request = new RequestMetadata(kv[0], Integer.parseInt(kv[1]), (short) 1, null, Map.of());
            }
            try {
                policy.validate(request);
                System.out.println(kv[0] + " allowed");
            } catch (PolicyViolationException e) {
                System.out.println(kv[0] + " refused: " + e.getMessage());
            }
        }
        policy.close();
    }
}
