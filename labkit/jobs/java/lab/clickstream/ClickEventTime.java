package lab.clickstream;

import java.time.Instant;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * The event time of a message for watermarking: its event_timestamp when plausible (at most 7 days before
 * and 1 hour after the Kafka timestamp), else the Kafka timestamp, so a bad message never drags the
 * watermark. Streams through the JSON until the field, without building a tree.
 */
public class ClickEventTime extends ScalarFunction {
    private static final JsonFactory JSON = new JsonFactory();

    public @DataTypeHint("TIMESTAMP_LTZ(3)") Instant eval(
            byte[] payload, @DataTypeHint("TIMESTAMP_LTZ(3)") Instant kafkaTs) {
        long kafka = kafkaTs == null ? System.currentTimeMillis() : kafkaTs.toEpochMilli();
        Long ts = payload == null || payload.length == 0 || payload.length > ParseClick.MAX_PAYLOAD ? null : find(payload);
        if (ts == null || ts < 0 || ts < kafka - ParseClick.MAX_PAST_MS || ts > ParseClick.YEAR_3000_MS
                || ts > kafka + ParseClick.MAX_FUTURE_MS) {
            return Instant.ofEpochMilli(kafka);
        }
        return Instant.ofEpochMilli(ts);
    }

    private static Long find(byte[] payload) {
        try (JsonParser p = JSON.createParser(payload)) {
            if (p.nextToken() != JsonToken.START_OBJECT) return null;
            JsonToken t;
            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken v = p.nextToken();
                if ("event_timestamp".equals(name)) {
                    if (v == JsonToken.VALUE_NUMBER_INT) return p.getLongValue();
                    if (v == JsonToken.VALUE_NUMBER_FLOAT) return (long) p.getDoubleValue();
                    if (v == JsonToken.VALUE_STRING) return Long.parseLong(p.getText().trim());
                    return null;
                }
                p.skipChildren();
            }
            return null;
        } catch (Exception e) {
            return null;
        }
    }
}
