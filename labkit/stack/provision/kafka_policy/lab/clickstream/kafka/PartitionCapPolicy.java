package lab.clickstream.kafka;

import java.util.List;
import java.util.Map;

import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.errors.PolicyViolationException;
import org.apache.kafka.server.policy.CreateTopicPolicy;

/**
 * Refuses a new topic with more partitions than the cluster allows per topic.
 *
 * <p>Workshop mode gives each attendee ALL on the topics of their prefix ({@code a07.}): ACLs can say which
 * topics they may create, not how large. One {@code a07.huge} with 100,000 partitions would bring down the shared
 * broker for the whole room, so the controller refuses it here, with a message naming the cap and the number asked
 * for. Configured with two broker (controller) properties:
 *
 * <pre>
 * create.topic.policy.class.name=lab.clickstream.kafka.PartitionCapPolicy
 * labkit.max.partitions.per.topic=64
 * </pre>
 *
 * <p>What this policy covers in Kafka 4.1 (KRaft), read in the source ({@code
 * metadata/src/main/java/org/apache/kafka/controller/ReplicationControlManager.java}, checked against the
 * bytecode of kafka-metadata-4.1.2.jar):
 *
 * <ul>
 *   <li>CreateTopics: {@code createTopic} calls {@code maybeCheckCreateTopicPolicy} for every topic, with
 *       {@code numPartitions} set (and {@code replicasAssignments} null), or, for a request with explicit replica
 *       assignments, {@code numPartitions} null and the assignments map; both are counted here. The policy runs
 *       before {@code applyPartitionChangeQuota}, so a refused topic costs no controller-mutation quota. Before
 *       any topic, {@code createTopics} calls {@code validateTotalNumberOfPartitions}, which refuses a request
 *       with more than {@code MAX_PARTITIONS_PER_BATCH} (10,000) partitions in all with Kafka's own
 *       PolicyViolationException "Excessively large number of partitions per request.": a 100,000-partition
 *       topic is refused there, before this policy sees it. This policy is what refuses 65 to 10,000.
 *   <li>CreatePartitions (raising an existing topic's count): NOT covered. {@code createPartitions} never calls
 *       the CreateTopicPolicy (nor any other policy). It checks only that the count grows and the controller
 *       mutation quota ({@code context.applyPartitionChangeQuota(additional)}), then places the new partitions.
 *       The quota is strict but checked before it is charged (KIP-599): an attendee whose quota is not yet
 *       exceeded gets one increase of any size through, and is refused (THROTTLING_QUOTA_EXCEEDED) only on the
 *       next mutations, until the rate falls back under the quota. There is also no 10,000-partition bound on
 *       the request: the records go into a {@code BoundedList} of 10,000 ({@code MAX_RECORDS_PER_USER_OP}),
 *       whose overflow surfaces as UNKNOWN_SERVER_ERROR, while the records already in the list (10,000 new
 *       partitions) are still committed by {@code ControllerResult.atomicOf}. (apache/kafka PR 20485,
 *       KAFKA-19673, proposes the same 10,000 check for CreatePartitions; it is not in 4.1.2.) Closing increases
 *       needs the ACLs: ALTER on a topic is what CreatePartitions requires.
 * </ul>
 */
public final class PartitionCapPolicy implements CreateTopicPolicy {

    /** The broker property holding the cap. */
    public static final String CAP_CONFIG = "labkit.max.partitions.per.topic";

    public static final int DEFAULT_CAP = 64;

    private volatile int cap = DEFAULT_CAP;

    /**
     * Reads the cap from the broker's properties (all of them reach a policy, unknown keys included). A value that
     * is not a whole number of at least 1 stops the broker: a cap silently left out would be no cap.
     */
    @Override
    public void configure(Map<String, ?> configs) {
        Object value = configs.get(CAP_CONFIG);
        if (value == null) {
            cap = DEFAULT_CAP;
            return;
        }
        int parsed;
        try {
            parsed = value instanceof Number ? Math.toIntExact(((Number) value).longValue())
                    : Integer.parseInt(value.toString().trim());
        } catch (NumberFormatException | ArithmeticException e) {
            throw new ConfigException(CAP_CONFIG, value, "must be a whole number of partitions");
        }
        if (parsed < 1) {
            throw new ConfigException(CAP_CONFIG, value, "must be at least 1");
        }
        cap = parsed;
    }

    /** The cap in force (for tests and logs). */
    public int cap() {
        return cap;
    }

    /**
     * Refuses {@code request} if it creates more partitions than the cap. Kafka's internal topics ({@code __}
     * names: {@code __consumer_offsets} and {@code __transaction_state} have 50 partitions by default) are let
     * through: the brokers create them when first needed, and a cap set below their count would otherwise break
     * consumer groups long after startup. Only the brokers and the cluster's admins can create such names; an
     * attendee's ACLs cover their own prefix only.
     */
    @Override
    public void validate(RequestMetadata request) throws PolicyViolationException {
        if (request.topic().startsWith("__")) {
            return;
        }
        int requested = partitions(request);
        if (requested > cap) {
            throw new PolicyViolationException("Topic " + request.topic() + ": " + requested
                    + " partitions requested, but this cluster allows at most " + cap + " partitions per topic ("
                    + CAP_CONFIG + "=" + cap + ").");
        }
    }

    /** The partitions a request creates: its explicit replica assignments if it has them, else its count. */
    static int partitions(RequestMetadata request) {
        Map<Integer, List<Integer>> assignments = request.replicasAssignments();
        if (assignments != null && !assignments.isEmpty()) {
            return assignments.size();
        }
        Integer n = request.numPartitions();
        return n == null ? 0 : n;
    }

    @Override
    public void close() {
    }
}
