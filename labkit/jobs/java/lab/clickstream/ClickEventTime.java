package lab.clickstream;

import java.time.Instant;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * The event time of a message for watermarking (the source's `rowtime`): the event_timestamp of a valid
 * event or of an end marker; for a message that fails validation, the earliest instant, which can never move
 * the watermark forward, whatever its Kafka timestamp or its own timestamp say. (Falling back to the Kafka
 * timestamp, as before, let one bad message written by a client whose send times lead its event times push a
 * partition's watermark to the present, and the valid events after it were dropped as late.)
 *
 * <p>Validation is ParseClick's, shared and cached per record, so the record is parsed once.
 */
public class ClickEventTime extends ScalarFunction {
    static final Instant NEVER = Instant.ofEpochMilli(0);

    public @DataTypeHint("TIMESTAMP_LTZ(3)") Instant eval(
            byte[] payload, @DataTypeHint("TIMESTAMP_LTZ(3)") Instant kafkaTs) {
        Long ts = ParseClick.check(payload, kafkaTs).eventMs;
        return ts == null ? NEVER : Instant.ofEpochMilli(ts);
    }
}
